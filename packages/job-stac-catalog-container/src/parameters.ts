import { z } from 'zod';
import { COLLECTION_ID_PATTERN } from '@coremachine/geo/stac';
import { blobPrefixSchema, containerNameSchema } from '@coremachine/storage';

/** Raster extensions catalogued when `extensions` is omitted. */
export const RASTER_EXTENSIONS = [
  '.tif',
  '.tiff',
  '.geotiff',
  '.gtiff',
  '.vrt',
  '.img',
  '.jp2',
  '.nc',
  '.hdf',
] as const;

/**
 * Catalogue tasks a stage is split into when `batch_size` is left to the job: every slot of a
 * small pool of workers gets one (a worker runs several tasks at once, each with
 * RASTERS_IN_FLIGHT rasters in flight), while each task still upserts many items per statement.
 */
export const TARGET_TASKS = 8;
/** Bounds of the batch size the job chooses: below the lower one a task costs more than its rasters. */
export const AUTO_BATCH_MIN = 25;
export const BATCH_MAX = 500;

/**
 * Rasters per catalogue task: `batch_size` when given, else the listing split into about
 * TARGET_TASKS tasks of AUTO_BATCH_MIN..BATCH_MAX rasters. The plan and the aggregate both use
 * it, so a batch key (`batch-000003`) always names the same rasters.
 * @example batchSizeFor(null, 1000) // 125: 8 tasks
 */
export function batchSizeFor(batchSize: number | null, rasters: number): number {
  if (batchSize !== null) return batchSize;
  return Math.min(BATCH_MAX, Math.max(AUTO_BATCH_MIN, Math.ceil(rasters / TARGET_TASKS)));
}

const extension = z
  .string()
  .trim()
  .min(1, 'extension is empty')
  .transform((v) => (v.startsWith('.') ? v : `.${v}`).toLowerCase())
  .refine((v) => /^\.[a-z0-9_-]+$/.test(v), {
    message: 'extension must look like ".tif" (one dot, letters and digits)',
  });

export const parameters = z.strictObject({
  container_name: containerNameSchema.describe('Container to scan (Azure container-name rules)'),
  prefix: blobPrefixSchema.default('').describe('Only blobs under this prefix (e.g. `dem/2020/`)'),
  extensions: z
    .array(extension)
    .min(1, 'extensions must list at least one extension')
    .default([...RASTER_EXTENSIONS])
    .transform((a) => [...new Set(a)].sort())
    .describe('File extensions to catalogue, case-insensitive; a missing dot is added'),
  limit: z
    .number()
    .int()
    .min(1)
    .max(100_000)
    .nullable()
    .default(null)
    .describe('Catalogue at most this many rasters (the first ones in name order)'),
  collection_id: z
    .string()
    .regex(COLLECTION_ID_PATTERN, 'collection_id must be 1-64 characters of [A-Za-z0-9._-]')
    .default('dev')
    .describe(
      'Target STAC collection; must exist (`dev`, `cogs`, `vectors`, `geoparquet`, or one made with `POST /stac/collections`)',
    ),
  batch_size: z
    .number()
    .int()
    .min(1)
    .max(BATCH_MAX)
    .nullable()
    .default(null)
    .describe(
      'Rasters per task (8 read at once within a task); 1 gives one task per raster; null: chosen from the listing (about 8 tasks of 25-500 rasters)',
    ),
  checksum: z
    .boolean()
    .default(true)
    .describe('`file:checksum` (sha2-256 multihash) of every blob, from the bytes read into memory, else streamed'),
});

export type Params = z.output<typeof parameters>;
