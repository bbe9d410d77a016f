import { gdalConfigFor, type StorageConfig } from '@coremachine/storage';
import { configureGdal } from './settings.ts';

/**
 * Points GDAL's /vsiaz/ at the same storage as `createStorage(config)` (process-wide) and
 * bounds GDAL's cache. Credentials stay in GDAL's in-memory config: never in task parameters,
 * results or logs, and no SAS URL is made.
 *
 * `CPL_VSIL_CURL_NON_CACHED=/vsiaz/`: GDAL otherwise keeps, for the life of the process, the
 * directory listings and file sizes/contents it has seen. In a long-lived worker a blob
 * uploaded after its folder was listed then "does not exist" for GDAL, and a blob overwritten
 * in place is read with its old content (both reproduced against Azurite). Reads within one
 * open dataset are unaffected.
 *
 * @example
 *   useStorageForGdal(ctx.services.storage.config);
 *   await gdal.openAsync(vsiazPath('bronze', 'dem.tif'));
 */
export function useStorageForGdal(config: StorageConfig, cacheMaxMb?: number): void {
  configureGdal({
    options: { ...gdalConfigFor(config), CPL_VSIL_CURL_NON_CACHED: '/vsiaz/' },
    ...(cacheMaxMb ? { cacheMaxMb } : {}),
  });
}
