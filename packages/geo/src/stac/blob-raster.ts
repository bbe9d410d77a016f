import { createHash, randomUUID } from 'node:crypto';
import gdal from 'gdal-async';
import type { Pool } from 'pg';
import { isStorageError, vsiazPath, type BlobStorage } from '@coremachine/storage';
import { useStorageForGdal } from '../gdal/storage.ts';
import { StacError } from './errors.ts';
import { multihashSha256 } from './checksum.ts';
import { geoTiffKeys } from './geotiff-keys.ts';
import { rasterItemId } from './ids.ts';
import { buildRasterItem } from './raster-item.ts';
import { upsertItem, type UpsertResult } from './store/store.ts';
import type { StacItem } from './types.ts';

/** Blobs up to this size are read once into memory and opened from /vsimem/ (when `listed.selfContained`). */
export const IN_MEMORY_MAX_BYTES = 8 * 1024 * 1024;

/**
 * Single-file formats GDAL reads from /vsimem/ exactly as from /vsiaz/. Not VRT (its sources
 * are other files), nor formats whose drivers need a real file or sibling files (HDF4, .img + .ige).
 */
const IN_MEMORY_EXTENSIONS = new Set(['.tif', '.tiff', '.gtiff', '.geotiff', '.jp2']);

/** What a container listing already said about a blob: lets the build skip a stat. */
export interface ListedBlob {
  size: number;
  lastModified: Date;
  /**
   * No other blob shares its stem (`a.tif` alone, no `a.tif.aux.xml`, `a.tfw`, `a.tif.ovr`, ...):
   * GDAL needs nothing but the blob's own bytes, so it may be read from memory.
   */
  selfContained: boolean;
}

export interface BlobRasterOptions {
  collection: string;
  /** Compute `file:checksum` (default true): from the bytes read for GDAL, else by streaming the blob. */
  checksum?: boolean;
  statistics?: boolean;
  signal?: AbortSignal;
  /** The blob as listed: no stat, and small self-contained rasters are read with one GET into memory. */
  listed?: ListedBlob;
  /** Size limit of the in-memory read (default IN_MEMORY_MAX_BYTES); 0 always reads through /vsiaz/. */
  inMemoryMaxBytes?: number;
}

const configured = new WeakSet<object>();

function extensionOf(blob: string): string {
  const dot = blob.lastIndexOf('.');
  return dot < 0 || blob.lastIndexOf('/') > dot ? '' : blob.slice(dot).toLowerCase();
}

/** The blob's bytes, or null when it does not exist. */
async function readBlob(
  storage: BlobStorage,
  container: string,
  blob: string,
  signal?: AbortSignal,
): Promise<Buffer | null> {
  try {
    const chunks: Buffer[] = [];
    for await (const chunk of await storage.readStream(container, blob, { signal })) chunks.push(chunk as Buffer);
    return Buffer.concat(chunks);
  } catch (err) {
    if (isStorageError(err, 'BLOB_NOT_FOUND')) return null;
    throw err;
  }
}

/**
 * Builds the STAC item of a raster blob. The href is `storage.blobUrl` (stable, no SAS), the id
 * `rasterItemId(container, blob)`.
 *
 * Two ways to read it:
 * - in memory: a listed, self-contained GeoTIFF/JPEG 2000 up to `inMemoryMaxBytes` is read with
 *   one GET; the checksum is taken from those bytes and GDAL opens them from /vsimem/. (Through
 *   /vsiaz/ the same raster costs a stat, a full read for the checksum, and GDAL's HEAD and
 *   range requests: ~90 ms against ~3 ms for a 256 x 256 COG from Azurite.)
 * - in place through /vsiaz/ (GDAL is pointed at `storage`'s account once), the checksum
 *   streamed alongside: every other raster, so GDAL still finds sidecar files and large files
 *   are never held in memory.
 * @returns null when the blob does not exist.
 */
export async function buildBlobRasterItem(
  storage: BlobStorage,
  container: string,
  blob: string,
  options: BlobRasterOptions,
): Promise<StacItem | null> {
  const itemOptions = {
    id: rasterItemId(container, blob),
    collection: options.collection,
    properties: { 'coremachine:container': container, 'coremachine:blob': blob },
    ...(options.statistics === undefined ? {} : { statistics: options.statistics }),
  };
  const href = storage.blobUrl(container, blob);
  const listed = options.listed;
  const maxBytes = options.inMemoryMaxBytes ?? IN_MEMORY_MAX_BYTES;
  if (listed?.selfContained && listed.size <= maxBytes && IN_MEMORY_EXTENSIONS.has(extensionOf(blob))) {
    const bytes = await readBlob(storage, container, blob, options.signal);
    if (!bytes) return null;
    // Rewritten since it was listed: its last-modified (the datetime fallback) is the stat's.
    let lastModified = listed.lastModified;
    if (bytes.length !== listed.size) {
      const stat = await storage.stat(container, blob, { signal: options.signal });
      if (!stat.exists) return null;
      lastModified = stat.lastModified;
    }
    const checksum = options.checksum === false ? undefined : '1220' + createHash('sha256').update(bytes).digest('hex');
    const dir = `/vsimem/coremachine-stac/${randomUUID()}`;
    const path = `${dir}/${blob.slice(blob.lastIndexOf('/') + 1)}`;
    // Nothing but these bytes defines its CRS: a GeoTIFF reuses the CRS of an earlier one with the same keys.
    const keys = extensionOf(blob) === '.jp2' ? null : geoTiffKeys(bytes);
    gdal.vsimem.set(bytes, path);
    try {
      return await buildRasterItem(
        {
          gdalPath: path,
          label: `${container}/${blob}`,
          href,
          size: bytes.length,
          lastModified,
          ...(checksum ? { checksum } : {}),
          ...(keys ? { crsKey: keys.crs, bandUnitsFromCrs: !keys.gdalMetadata } : {}),
        },
        itemOptions,
      );
    } catch (err) {
      // Messages name the blob (container/blob), never the in-memory path.
      if (err instanceof Error) err.message = err.message.replaceAll(path, `${container}/${blob}`);
      throw err;
    } finally {
      // The blob, and whatever a driver may have written beside it (readDir throws once the folder is empty).
      let files: string[] = [];
      try {
        files = gdal.fs.readDir(dir);
      } catch {
        /* already empty */
      }
      for (const f of files) {
        try {
          gdal.vsimem.release(`${dir}/${f}`);
        } catch {
          /* not a file */
        }
      }
    }
  }

  if (!configured.has(storage)) {
    // Also turns GDAL's /vsiaz/ caches off: a blob written after a sibling was opened would
    // otherwise be reported missing from the cached listing (regression test: STACIT test).
    useStorageForGdal(storage.config);
    configured.add(storage);
  }
  const stat = listed ?? (await storage.stat(container, blob, { signal: options.signal }));
  if ('exists' in stat && !stat.exists) return null;
  const { size, lastModified } = stat as { size: number; lastModified: Date };
  // The checksum streams while GDAL reads; null when the blob is gone (deleted since it was listed).
  const sum =
    options.checksum === false
      ? Promise.resolve(undefined)
      : (async () => {
          try {
            return await multihashSha256(await storage.readStream(container, blob, { signal: options.signal }));
          } catch (err) {
            if (isStorageError(err, 'BLOB_NOT_FOUND')) return null;
            throw err;
          }
        })();
  sum.catch(() => undefined); // awaited below; keeps an early GDAL failure from leaving it unhandled
  let item: StacItem;
  try {
    item = await buildRasterItem(
      { gdalPath: vsiazPath(container, blob), label: `${container}/${blob}`, href, size, lastModified },
      itemOptions,
    );
  } catch (err) {
    if (
      listed &&
      ((await sum.catch(() => undefined)) === null ||
        !(await storage.stat(container, blob, { signal: options.signal })).exists)
    )
      return null;
    throw err;
  }
  const checksum = await sum;
  if (checksum === null) return null;
  if (checksum) item.assets.data!['file:checksum'] = checksum;
  return item;
}

/**
 * Catalogues one raster blob: builds, validates and upserts its item. What process_raster
 * calls for each COG it writes (collection `cogs`).
 * @example
 *   await registerBlobRaster(ctx.db, ctx.services.stac.schema, ctx.services.storage, 'silver', 'dem_cog.tif', { collection: 'cogs' });
 * @throws StacError (BLOB_NOT_FOUND, RASTER_NO_CRS, STAC_INVALID, STAC_COLLECTION_NOT_FOUND, ...).
 */
export async function registerBlobRaster(
  pool: Pool,
  schema: string,
  storage: BlobStorage,
  container: string,
  blob: string,
  options: BlobRasterOptions,
): Promise<UpsertResult> {
  const item = await buildBlobRasterItem(storage, container, blob, options);
  if (!item) throw new StacError('BLOB_NOT_FOUND', `Blob ${container}/${blob} does not exist`);
  return upsertItem(pool, schema, item);
}
