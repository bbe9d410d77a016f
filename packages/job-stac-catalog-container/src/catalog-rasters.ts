import { defineStage, outputsOf, permanentError, TaskError } from '@coremachine/core-machine';
import { gdalTaskError } from '@coremachine/geo';
import {
  assertValidItems,
  buildBlobRasterItem,
  formatIssues,
  StacError,
  upsertItems,
  type StacItem,
} from '@coremachine/geo/stac';
import { vsiazPath } from '@coremachine/storage';
import { z } from 'zod';
import { listedRaster, listRasters } from './list-rasters.ts';
import { batchSizeFor, type Params } from './parameters.ts';

const stage = defineStage<Params>();

export const blobFailure = z.object({
  blob: z.string(),
  code: z.string(),
  message: z.string(),
  issues: z.array(z.unknown()).optional(),
  /** The raster hit a network/storage error: the batch is retried for it. */
  transient: z.boolean().optional(),
});
export type BlobFailure = z.output<typeof blobFailure>;

export const catalogOutput = z.object({
  items: z.array(z.object({ blob: z.string(), item_id: z.string(), inserted: z.boolean() })),
  inserted: z.number().int(),
  updated: z.number().int(),
});

/** Detail of the permanent error of a batch in which some rasters could not be catalogued. */
export const batchFailureDetail = catalogOutput.extend({ failed: z.array(blobFailure) });

/** Rasters of a batch read at once: the work is mostly waiting on storage. */
export const RASTERS_IN_FLIGHT = 8;

/** GDAL error kinds that mean the blob is not a raster GDAL can use. */
const UNREADABLE_CODES = { unsupported: 'RASTER_UNREADABLE', corrupt: 'RASTER_UNREADABLE' } as const;

/**
 * Stage 2: one task per batch of `batchSizeFor(batch_size, rasters)` rasters (keys `batch-000000`, ...). Each builds
 * the items of its rasters from the blobs in place, validates them and upserts the valid ones
 * in one statement. Every raster gets its own outcome, its message naming its own blob: an
 * error of one raster (classified at the GDAL boundary) never fails or names another. Rasters
 * that cannot be catalogued (unreadable, not georeferenced, invalid item) fail the task
 * permanently, with every failure and the counts of what was written in the error detail; when
 * some raster hit a network/storage error, the items built are still upserted and the task is
 * retried with the same detail (the upserts make that safe), so that after the last attempt
 * each raster still has its own reason.
 */
export const catalogRasters = stage({
  name: 'catalog_rasters',
  description: 'Builds, validates and upserts the STAC items of a batch of rasters',
  input: z.object({ container_name: z.string(), collection_id: z.string(), blobs: z.array(listedRaster).min(1) }),
  output: catalogOutput,
  onTaskFailure: 'continue',
  plan: ({ params, previous }) => {
    const blobs = outputsOf(listRasters, previous).flatMap((t) => t.output.blobs);
    const size = batchSizeFor(params.batch_size, blobs.length);
    const tasks = [];
    for (let i = 0; i < blobs.length; i += size) {
      tasks.push({
        key: `batch-${String(i / size).padStart(6, '0')}`,
        input: {
          container_name: params.container_name,
          collection_id: params.collection_id,
          blobs: blobs.slice(i, i + size),
        },
      });
    }
    return tasks;
  },
  handler: async (input, ctx) => {
    const storage = ctx.services.storage;
    const schema = ctx.services.stac.schema;
    const results: Array<{ blob: string; item: StacItem } | BlobFailure> = new Array(input.blobs.length);
    let done = 0;
    const catalog = async (i: number) => {
      const { name: blob, size, last_modified, sidecars } = input.blobs[i]!;
      try {
        const item = await buildBlobRasterItem(storage, input.container_name, blob, {
          collection: input.collection_id,
          checksum: ctx.params.checksum,
          signal: ctx.signal,
          listed: { size, lastModified: new Date(last_modified), selfContained: !sidecars },
        });
        if (!item) {
          results[i] = {
            blob,
            code: 'BLOB_NOT_FOUND',
            message: `Blob ${input.container_name}/${blob} no longer exists`,
          };
        } else {
          assertValidItems([item]);
          results[i] = { blob, item };
        }
      } catch (err) {
        if (err instanceof StacError)
          results[i] = {
            blob,
            code: err.code,
            message: err.message,
            ...(err.issues.length ? { issues: err.issues } : {}),
          };
        else {
          const file = `${input.container_name}/${blob}`;
          const e = gdalTaskError(err, {
            file,
            paths: { [vsiazPath(input.container_name, blob)]: file },
            codes: UNREADABLE_CODES,
          });
          if (!e.permanent) ctx.log.warn('raster not catalogued (will retry)', { blob: file, error: e.message });
          results[i] = { blob, code: e.code, message: e.message, ...(e.permanent ? {} : { transient: true }) };
        }
      }
      ctx.progress(++done / input.blobs.length, blob);
    };
    let next = 0;
    await Promise.all(
      Array.from({ length: Math.min(RASTERS_IN_FLIGHT, input.blobs.length) }, async () => {
        while (next < input.blobs.length && !ctx.signal.aborted) await catalog(next++);
      }),
    );
    ctx.signal.throwIfAborted();
    const built = results.filter((r): r is { blob: string; item: StacItem } => 'item' in r);
    const failed = results.filter((r): r is BlobFailure => !('item' in r));
    // Each item was validated on its own above: one multi-row upsert, no second validation.
    const written = await upsertItems(
      ctx.db,
      schema,
      built.map((b) => b.item),
      { validated: true },
    );
    const insertedById = new Map(written.map((w) => [w.id, w.inserted]));
    const items = built.map((b) => ({
      blob: b.blob,
      item_id: b.item.id,
      inserted: insertedById.get(b.item.id) ?? false,
    }));
    const counts = {
      items,
      inserted: items.filter((i) => i.inserted).length,
      updated: items.filter((i) => !i.inserted).length,
    };
    const retry = failed.filter((f) => f.transient);
    if (retry.length) {
      throw new TaskError(
        'RASTERS_RETRYABLE',
        `${retry.length} of ${input.blobs.length} rasters hit a storage or network error; first: ${retry[0]!.message}`,
        { permanent: false, detail: { ...counts, failed } },
      );
    }
    if (failed.length) {
      const first = failed[0]!;
      throw permanentError(
        failed.length === 1 ? first.code : 'RASTERS_NOT_CATALOGUED',
        failed.length === 1
          ? first.message
          : `${failed.length} of ${input.blobs.length} rasters could not be catalogued; first: ${first.message}${first.issues ? ` (${formatIssues(first.issues as never)})` : ''}`,
        { ...counts, failed },
      );
    }
    return counts;
  },
});
