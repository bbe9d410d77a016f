export { configureGdal, gdalSettings, gdalThreads, DEFAULT_GDAL_CACHEMAX_MB } from './setup.ts';
export type { GdalSetupOptions } from './setup.ts';
export { useStorageForGdal } from './storage.ts';
