export { configureGdal, gdalSettings, gdalThreads, DEFAULT_GDAL_CACHEMAX_MB } from './settings.ts';
export type { GdalSetupOptions } from './settings.ts';
export { useStorageForGdal } from './storage.ts';
export {
  classifyGdalError,
  gdalTaskError,
  atGdalBoundary,
  gdalMessage,
  scrubPaths,
  isTransientGdalError,
  GDAL_ERROR_CODES,
} from './errors.ts';
export type { GdalErrorKind, GdalErrorClassification, GdalErrorContext } from './errors.ts';
