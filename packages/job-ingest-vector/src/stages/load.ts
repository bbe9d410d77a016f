import { z } from 'zod';
import { defineStage, outputsOf, TaskError, type TaskContext } from '@coremachine/core-machine';
import { fidFilter, gdalPgConnection } from '@coremachine/geo/vector';
import { encodingFailure } from '../encoding.ts';
import { dropJobTables } from '../tables.ts';
import type { Params } from '../params.ts';
import { openSource } from '../source.ts';
import { loadChunk } from '../load-chunk.ts';
import { columnPlan, dimensions, featureRange, geometryPlan, skipped, tableRef } from '../schemas.ts';
import { prepare } from './prepare.ts';

/** Runs of a load task; the last failing one removes the job's tables. */
export const LOAD_ATTEMPTS = 4;

export const loadInput = z.object({
  range: featureRange,
  staging: tableRef,
  columns: z.array(columnPlan),
  geometry: geometryPlan,
  /** The source's dimensions; absent: the column's. */
  source_dimensions: dimensions.optional(),
  lon_lat_columns: z.boolean(),
  /** GDAL's ENCODING open option for the source (prepare's decision), null: none. */
  encoding: z.string().nullable().optional(),
  /** The source version prepare planned on: a blob replaced since fails the task (SOURCE_CHANGED). */
  source_etag: z.string().optional(),
});

export const loadOutput = z.object({
  chunk: z.int().nonnegative(),
  read: z.int().nonnegative(),
  inserted: z.int().nonnegative(),
  skipped,
  repaired: z.int().nonnegative(),
  /** Coordinates whose Z or M was dropped (force_2d). */
  flattened: z.int().nonnegative().default(0),
});

/**
 * Stage 2, one task per chunk: GDAL copies the chunk's FID range into a chunk table
 * (reprojected to EPSG:4326), then SQL repairs, fits and moves it into the staging table,
 * exactly once per chunk.
 */
export const load = defineStage<Params>()({
  name: 'load',
  description: 'Copy one FID range with GDAL into a chunk table, then move it into the staging table',
  input: loadInput,
  output: loadOutput,
  plan: (ctx) => {
    const [prep] = outputsOf(prepare, ctx.previous);
    if (!prep) return [];
    const o = prep.output;
    return o.ranges.map((range) => ({
      key: `chunk_${String(range.index).padStart(5, '0')}`,
      input: {
        range,
        staging: o.staging,
        columns: o.columns,
        geometry: o.geometry,
        source_dimensions: o.source_dimensions,
        lon_lat_columns: o.lon_lat_columns,
        encoding: o.encoding?.gdal ?? null,
        source_etag: o.source.etag,
      },
    }));
  },
  retry: { maxAttempts: LOAD_ATTEMPTS },
  handler: async (input, ctx) => {
    try {
      return await loadOne(input, ctx);
    } catch (err) {
      // The job fails with this task: it leaves no table behind (staging, markers, chunks).
      if ((err instanceof TaskError && err.permanent) || ctx.attempt >= LOAD_ATTEMPTS)
        await dropJobTables(ctx.db, input.staging);
      throw err;
    }
  },
});

async function loadOne(
  input: z.output<typeof loadInput>,
  ctx: TaskContext<Params>,
): Promise<z.output<typeof loadOutput>> {
  {
    const params = input.encoding ? { ...ctx.params, encoding: input.encoding } : ctx.params;
    const src = await openSource(params, ctx.services, ctx.signal, { expectedEtag: input.source_etag });
    try {
      const stats = await loadChunk(ctx.db, src, input.range, {
        staging: input.staging,
        columns: input.columns,
        geometry: input.geometry,
        sourceDimensions: input.source_dimensions,
        pg: gdalPgConnection((ctx.db as unknown as { options: { connectionString: string } }).options.connectionString),
        checkLonLatRange: input.lon_lat_columns,
        signal: ctx.signal,
      });
      return {
        chunk: input.range.index,
        read: stats.read,
        inserted: stats.inserted,
        skipped: stats.skipped,
        repaired: stats.repaired,
        flattened: stats.flattened,
      };
    } catch (err) {
      const range = input.range;
      const where = range.fidMin !== undefined ? fidFilter(src.layer, range.fidMin, range.fidNext) : null;
      throw encodingFailure(err, src.layer, where, ctx.params, input.encoding ?? null) ?? err;
    } finally {
      src.close();
    }
  }
}
