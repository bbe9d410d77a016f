import type { Pool } from 'pg';
import { vsiazPath, type BlobStorage } from '@coremachine/storage';
import { useStorageForGdal } from '../gdal/storage.ts';
import { StacError } from './errors.ts';
import { multihashSha256 } from './checksum.ts';
import { rasterItemId } from './ids.ts';
import { buildRasterItem } from './raster-item.ts';
import { upsertItem, type UpsertResult } from './store/store.ts';
import type { StacItem } from './types.ts';

export interface BlobRasterOptions {
  collection: string;
  /** Stream the blob to compute `file:checksum` (default true). */
  checksum?: boolean;
  statistics?: boolean;
  signal?: AbortSignal;
}

const configured = new WeakSet<object>();

/**
 * Builds the STAC item of a raster blob, read in place through /vsiaz/ (GDAL is pointed at
 * `storage`'s account once). The href is `storage.blobUrl` (stable, no SAS), the id
 * `rasterItemId(container, blob)`.
 * @returns null when the blob does not exist.
 */
export async function buildBlobRasterItem(storage: BlobStorage, container: string, blob: string, options: BlobRasterOptions): Promise<StacItem | null> {
  if (!configured.has(storage)) {
    // Also turns GDAL's /vsiaz/ caches off: a blob written after a sibling was opened would
    // otherwise be reported missing from the cached listing (regression test: STACIT test).
    useStorageForGdal(storage.config);
    configured.add(storage);
  }
  const stat = await storage.stat(container, blob, { signal: options.signal });
  if (!stat.exists) return null;
  const checksum = options.checksum === false ? undefined : await multihashSha256(await storage.readStream(container, blob, { signal: options.signal }));
  return buildRasterItem(
    { gdalPath: vsiazPath(container, blob), href: storage.blobUrl(container, blob), size: stat.size, lastModified: stat.lastModified, ...(checksum ? { checksum } : {}) },
    {
      id: rasterItemId(container, blob),
      collection: options.collection,
      properties: { 'coremachine:container': container, 'coremachine:blob': blob },
      ...(options.statistics === undefined ? {} : { statistics: options.statistics }),
    },
  );
}

/**
 * Catalogues one raster blob: builds, validates and upserts its item. What process_raster
 * calls for each COG it writes (collection `cogs`).
 * @example
 *   await registerBlobRaster(ctx.db, ctx.services.stac.schema, ctx.services.storage, 'silver', 'dem_cog.tif', { collection: 'cogs' });
 * @throws StacError (BLOB_NOT_FOUND, RASTER_NO_CRS, STAC_INVALID, STAC_COLLECTION_NOT_FOUND, ...).
 */
export async function registerBlobRaster(pool: Pool, schema: string, storage: BlobStorage, container: string, blob: string, options: BlobRasterOptions): Promise<UpsertResult> {
  const item = await buildBlobRasterItem(storage, container, blob, options);
  if (!item) throw new StacError('BLOB_NOT_FOUND', `Blob ${container}/${blob} does not exist`);
  return upsertItem(pool, schema, item);
}
