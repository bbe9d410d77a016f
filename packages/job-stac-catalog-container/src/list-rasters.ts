import { defineStage, permanentError } from '@coremachine/core-machine';
import { assertCollectionExists, StacError } from '@coremachine/geo/stac';
import { z } from 'zod';
import type { Params } from './parameters.ts';

const stage = defineStage<Params>();

export const listOutput = z.object({
  /** Raster blob names, in name order. Stored as this task's result in the database. */
  blobs: z.array(z.string()),
  total_blobs_scanned: z.number().int(),
  rasters_found: z.number().int(),
  limit_applied: z.boolean(),
  scan_duration_seconds: z.number(),
});

/** Stage 1: one task lists the container and keeps the raster names (name order, up to `limit`). */
export const listRasters = stage({
  name: 'list_rasters',
  description: 'Lists the container under prefix and keeps blobs with a raster extension',
  input: z.object({ container_name: z.string(), prefix: z.string() }),
  output: listOutput,
  plan: ({ params }) => [{ key: 'list', input: { container_name: params.container_name, prefix: params.prefix } }],
  handler: async (input, ctx) => {
    const started = performance.now();
    try {
      await assertCollectionExists(ctx.db, ctx.services.stac.schema, ctx.params.collection_id);
    } catch (err) {
      if (err instanceof StacError) throw permanentError(err.code, err.message);
      throw err;
    }
    if (!(await ctx.services.storage.containerExists(input.container_name))) {
      throw permanentError('CONTAINER_NOT_FOUND', `Container ${input.container_name} does not exist`);
    }
    const wanted = new Set(ctx.params.extensions);
    const limit = ctx.params.limit ?? Infinity;
    const blobs: string[] = [];
    let scanned = 0;
    let limited = false;
    for await (const page of ctx.services.storage.listPages(input.container_name, { prefix: input.prefix, signal: ctx.signal })) {
      for (const blob of page) {
        scanned++;
        const dot = blob.name.lastIndexOf('.');
        if (dot < 0 || blob.name.lastIndexOf('/') > dot || !wanted.has(blob.name.slice(dot).toLowerCase())) continue;
        if (blobs.length >= limit) { limited = true; break; }
        blobs.push(blob.name);
      }
      if (limited) break;
      ctx.progress(0.5, `${scanned} blobs scanned, ${blobs.length} rasters`);
    }
    return { blobs, total_blobs_scanned: scanned, rasters_found: blobs.length, limit_applied: limited, scan_duration_seconds: Math.round(performance.now() - started) / 1000 };
  },
});
