export * from './gdal/index.ts';
