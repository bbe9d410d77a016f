export { configureGdal, gdalSettings, gdalThreads, DEFAULT_GDAL_CACHEMAX_MB } from './settings.ts';
export type { GdalSetupOptions } from './settings.ts';
export { useStorageForGdal } from './storage.ts';
