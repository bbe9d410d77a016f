import { defineStage, permanentError } from '@coremachine/core-machine';
import { assertCollectionExists, StacError } from '@coremachine/geo/stac';
import { z } from 'zod';
import type { Params } from './parameters.ts';
import { StemGroups } from './sidecars.ts';

const stage = defineStage<Params>();

/** A raster as listed: what stage 2 needs to read it without a stat. */
export const listedRaster = z.object({
  name: z.string(),
  size: z.number().int(),
  /** ISO 8601. */
  last_modified: z.string(),
  /** Another blob shares its stem (`a.tif.aux.xml`, `a.tfw`, ...): GDAL must read it in place to see them. */
  sidecars: z.boolean(),
});
export type ListedRaster = z.output<typeof listedRaster>;

export const listOutput = z.object({
  /** Rasters in name order. Stored as this task's result in the database. */
  blobs: z.array(listedRaster),
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
    const found: Array<Omit<ListedRaster, 'sidecars'>> = [];
    const stems = new StemGroups();
    let scanned = 0;
    let limited = false;
    for await (const page of ctx.services.storage.listPages(input.container_name, {
      prefix: input.prefix,
      signal: ctx.signal,
    })) {
      for (const blob of page) {
        scanned++;
        const dot = blob.name.lastIndexOf('.');
        const raster = dot >= 0 && blob.name.lastIndexOf('/') < dot && wanted.has(blob.name.slice(dot).toLowerCase());
        if (raster && found.length >= limit) {
          limited = true;
          break;
        }
        stems.add(blob.name, raster ? found.length : null);
        if (raster) found.push({ name: blob.name, size: blob.size, last_modified: blob.lastModified.toISOString() });
      }
      if (limited) break;
      ctx.progress(0.5, `${scanned} blobs scanned, ${found.length} rasters`);
    }
    stems.end(limited);
    const blobs = found.map((b, i) => ({ ...b, sidecars: stems.shared(i) }));
    return {
      blobs,
      total_blobs_scanned: scanned,
      rasters_found: blobs.length,
      limit_applied: limited,
      scan_duration_seconds: Math.round(performance.now() - started) / 1000,
    };
  },
});
