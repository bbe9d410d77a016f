export { configureGdal, gdalSettings, gdalThreads } from './setup.ts';
export type { GdalSetupOptions } from './setup.ts';
export { useStorageForGdal } from './storage.ts';
