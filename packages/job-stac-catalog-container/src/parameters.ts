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

/** Rasters per catalogue task when `batch_size` is omitted. */
export const DEFAULT_BATCH_SIZE = 100;

const extension = z
  .string()
  .trim()
  .min(1, 'extension is empty')
  .transform((v) => (v.startsWith('.') ? v : `.${v}`).toLowerCase())
  .refine((v) => /^\.[a-z0-9_-]+$/.test(v), {
    message: 'extension must look like ".tif" (one dot, letters and digits)',
  });

export const parameters = z.strictObject({
  /** Container to scan (e.g. `bronze`). */
  container_name: containerNameSchema,
  /** Only blobs under this prefix (e.g. `dem/2020/`). */
  prefix: blobPrefixSchema.default(''),
  /** File extensions to catalogue, case-insensitive; a missing dot is added. */
  extensions: z
    .array(extension)
    .min(1, 'extensions must list at least one extension')
    .default([...RASTER_EXTENSIONS])
    .transform((a) => [...new Set(a)].sort()),
  /** Catalogue at most this many rasters (the first ones in name order). */
  limit: z.number().int().min(1).max(100_000).nullable().default(null),
  /** Target STAC collection; must exist (dev, cogs, vectors, geoparquet, or one created through POST /stac/collections). */
  collection_id: z
    .string()
    .regex(COLLECTION_ID_PATTERN, 'collection_id must be 1-64 characters of [A-Za-z0-9._-]')
    .default('dev'),
  /** Rasters per task (up to 8 read at once within a task): 1 gives one task per raster; larger batches cut per-task overhead. */
  batch_size: z.number().int().min(1).max(500).default(DEFAULT_BATCH_SIZE),
  /** Stream every blob to compute file:checksum (sha2-256 multihash). */
  checksum: z.boolean().default(true),
});

export type Params = z.output<typeof parameters>;
