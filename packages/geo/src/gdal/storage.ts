import { gdalConfigFor, type StorageConfig } from '@coremachine/storage';
import { configureGdal } from './setup.ts';

/**
 * Points GDAL's /vsiaz/ at the same storage as `createStorage(config)` (process-wide) and
 * bounds GDAL's cache. Credentials stay in GDAL's in-memory config: never in task parameters,
 * results or logs, and no SAS URL is made.
 *
 * @example
 *   useStorageForGdal(ctx.services.storage.config);
 *   await gdal.openAsync(vsiazPath('bronze', 'dem.tif'));
 */
export function useStorageForGdal(config: StorageConfig, cacheMaxMb?: number): void {
  configureGdal({ options: gdalConfigFor(config), ...(cacheMaxMb ? { cacheMaxMb } : {}) });
}
