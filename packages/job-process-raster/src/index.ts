import { defineJob } from '@coremachine/core-machine';
import type { ValidationResult } from '@coremachine/geo/raster';
import { z } from 'zod';
import { createCogOutput, type CreateCogOutput } from './create-cog-task.ts';
import { parameters } from './parameters.ts';
import { tilingSummary } from './assemble-task.ts';
import { createCog, validate, windows } from './stages.ts';
import type { WindowTaskOutput } from './tiled.ts';
import { tilesOutput, type TilesOutput } from './tiles.ts';

export const result = z.object({
  job_type: z.literal('process_raster'),
  source_blob: z.string(),
  source_container: z.string(),
  validation: z.object({
    source_crs: z.string(),
    raster_type: z.string(),
    confidence: z.string(),
    bit_depth_efficient: z.boolean(),
    warnings: z.array(z.object({ severity: z.string(), code: z.string(), message: z.string() })),
  }),
  /** The COG (null for output `tiles`). */
  cog: createCogOutput.nullable(),
  /** Output `tiles`: the tiles and their STAC collection (null for one COG). */
  tiles: tilesOutput.nullable(),
  /** The tiled path's windows (null when the source was converted in one task). */
  tiling: tilingSummary.nullable(),
  stages_completed: z.number().int(),
  total_tasks_executed: z.number().int(),
  tasks_by_status: z.object({ completed: z.number().int(), failed: z.number().int() }),
});

/**
 * process_raster: validates a raster, then reprojects it (EPSG:4326 by default) into a
 * Cloud-Optimized GeoTIFF `<name>_cog.tif` in the output container, with compression and
 * resampling chosen for its detected type. A source above the tiling threshold is warped in
 * windows, one task each (any worker), then assembled into the one COG.
 */
export default defineJob({
  type: 'process_raster',
  version: '1.0.0',
  description: 'Validate a raster, then reproject it into a Cloud-Optimized GeoTIFF in the silver container',
  parameters,
  stages: [validate, windows, createCog],
  services: ['storage'],
  result,
  aggregate: async (ctx) => {
    const [v] = await ctx.tasks('validate');
    const [c] = await ctx.tasks('create_cog');
    const w = await ctx.tasks('windows');
    const validation = v!.output as ValidationResult & { tiling?: { window_size: number } | null };
    const all = [v, ...w, c].filter((t) => t !== undefined);
    const wo = w.flatMap((t) => (t.output ? [t.output as WindowTaskOutput] : []));
    return {
      job_type: 'process_raster' as const,
      source_blob: ctx.params.blob_name,
      source_container: ctx.params.container_name,
      validation: {
        source_crs: validation.source_crs,
        raster_type: validation.raster_type.detected_type,
        confidence: validation.raster_type.confidence,
        bit_depth_efficient: validation.bit_depth_check.efficient,
        warnings: validation.warnings,
      },
      cog: ctx.params.output === 'tiles' ? null : (c!.output as CreateCogOutput),
      tiles: ctx.params.output === 'tiles' ? (c!.output as TilesOutput) : null,
      tiling: validation.tiling
        ? {
            windows: w.length,
            window_size: validation.tiling.window_size,
            reused: wo.filter((o) => o.reused).length,
            window_seconds_total: Math.round(wo.reduce((s, o) => s + o.seconds, 0) * 1000) / 1000,
            window_seconds_max: Math.max(0, ...wo.map((o) => o.seconds)),
            peak_rss_mb_max: Math.max(0, ...wo.map((o) => o.peak_rss_mb)),
          }
        : null,
      stages_completed: ctx.stages.filter((s) => s.status === 'completed').length,
      total_tasks_executed: all.length,
      tasks_by_status: {
        completed: all.filter((t) => t.status === 'completed').length,
        failed: all.filter((t) => t.status === 'failed').length,
      },
    };
  },
  // One task at a time per worker (a COG or one window): GDAL already uses every core for
  // warping and compression, and a window's memory bound holds per process only if windows
  // do not run side by side (the default batch would run up to 50 at once).
  queue: { concurrency: 1, batchSize: 1 },
});

export { parameters, validate, windows, createCog };
export { chosenSettings } from './stages.ts';
export { runAssembleTask, tilingSummary, type AssembleTaskInput } from './assemble-task.ts';
export * from './tiled.ts';
export * from './tiles.ts';
export { tiledConfig, type TiledConfig } from './config.ts';
export { cogBlobName, type Params } from './parameters.ts';
export {
  runCreateCogTask,
  createCogInput,
  createCogOutput,
  type CreateCogInput,
  type CreateCogOutput,
} from './create-cog-task.ts';
