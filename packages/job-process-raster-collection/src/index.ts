import { defineJob } from '@coremachine/core-machine';
import {
  createCogOutput,
  tilesOutput,
  tilingSummary,
  type CreateCogOutput,
  type TilesOutput,
  type WindowTaskOutput,
} from '@coremachine/job-process-raster';
import { z } from 'zod';
import type { InspectOutput } from './inspect-task.ts';
import { parameters } from './parameters.ts';
import { createCog, inspect, windows } from './stages.ts';

export const result = z.object({
  job_type: z.literal('process_raster_collection'),
  source_container: z.string(),
  /** How many rasters went into the mosaic, and the first of them (all are in the inspect task's output). */
  input_count: z.number().int(),
  first_inputs: z.array(z.string()),
  /** The mosaic COG, reported as process_raster reports its COG (null for output `tiles`). */
  cog: createCogOutput.nullable(),
  /** Output `tiles`: the tiles and their STAC collection (null for one COG). */
  tiles: tilesOutput.nullable(),
  tiling: tilingSummary,
  stages_completed: z.number().int(),
  total_tasks_executed: z.number().int(),
  tasks_by_status: z.object({ completed: z.number().int(), failed: z.number().int() }),
});

/**
 * process_raster_collection: many rasters (a prefix or a list) checked for compatibility and
 * mosaicked, window by window over the workers, into one Cloud-Optimized GeoTIFF.
 */
export default defineJob({
  type: 'process_raster_collection',
  version: '1.0.0',
  description: 'Mosaic many rasters (a prefix or a list) into one Cloud-Optimized GeoTIFF, window by window',
  parameters,
  stages: [inspect, windows, createCog],
  result,
  services: ['storage'],
  aggregate: async (ctx) => {
    const [i] = await ctx.tasks('inspect');
    const w = await ctx.tasks('windows');
    const [c] = await ctx.tasks('create_cog');
    const inspected = i!.output as InspectOutput;
    const wo = w.flatMap((t) => (t.output ? [t.output as WindowTaskOutput] : []));
    const all = [i, ...w, c].filter((t) => t !== undefined);
    return {
      job_type: 'process_raster_collection' as const,
      source_container: ctx.params.container_name,
      input_count: inspected.inputs.length,
      first_inputs: inspected.inputs.slice(0, 20).map((x) => x.blob),
      cog: ctx.params.output === 'tiles' ? null : (c!.output as CreateCogOutput),
      tiles: ctx.params.output === 'tiles' ? (c!.output as TilesOutput) : null,
      tiling: {
        windows: w.length,
        window_size: inspected.tiling.window_size,
        reused: wo.filter((o) => o.reused).length,
        window_seconds_total: Math.round(wo.reduce((s, o) => s + o.seconds, 0) * 1000) / 1000,
        window_seconds_max: Math.max(0, ...wo.map((o) => o.seconds)),
        peak_rss_mb_max: Math.max(0, ...wo.map((o) => o.peak_rss_mb)),
      },
      stages_completed: ctx.stages.filter((s) => s.status === 'completed').length,
      total_tasks_executed: all.length,
      tasks_by_status: {
        completed: all.filter((t) => t.status === 'completed').length,
        failed: all.filter((t) => t.status === 'failed').length,
      },
    };
  },
  // One task at a time per worker: GDAL uses every core, and the per-task memory bound holds.
  queue: { concurrency: 1, batchSize: 1 },
});

export { parameters, inspect, windows, createCog };
export type { Params } from './parameters.ts';
