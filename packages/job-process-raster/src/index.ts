import { defineJob } from '@coremachine/core-machine';
import type { ValidationResult } from '@coremachine/geo/raster';
import { z } from 'zod';
import { createCogOutput, type CreateCogOutput } from './create-cog-task.ts';
import { parameters } from './parameters.ts';
import { createCog, validate } from './stages.ts';

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
  cog: createCogOutput,
  stages_completed: z.number().int(),
  total_tasks_executed: z.number().int(),
  tasks_by_status: z.object({ completed: z.number().int(), failed: z.number().int() }),
});

/**
 * process_raster: validates a raster, then reprojects it (EPSG:4326 by default) into a
 * Cloud-Optimized GeoTIFF `<name>_cog.tif` in the output container, with compression and
 * resampling chosen for its detected type.
 */
export default defineJob({
  type: 'process_raster',
  version: '1.0.0',
  description: 'Validate a raster, then reproject it into a Cloud-Optimized GeoTIFF in the silver container',
  parameters,
  stages: [validate, createCog],
  result,
  aggregate: async (ctx) => {
    const [v] = await ctx.tasks('validate');
    const [c] = await ctx.tasks('create_cog');
    const validation = v!.output as ValidationResult;
    const all = [v, c].filter((t) => t !== undefined);
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
      cog: c!.output as CreateCogOutput,
      stages_completed: ctx.stages.filter((s) => s.status === 'completed').length,
      total_tasks_executed: all.length,
      tasks_by_status: {
        completed: all.filter((t) => t.status === 'completed').length,
        failed: all.filter((t) => t.status === 'failed').length,
      },
    };
  },
  // One COG at a time per worker: GDAL already uses every core for warping and compression.
  queue: { concurrency: 1 },
});

export { parameters, validate, createCog };
export { cogBlobName, type Params } from './parameters.ts';
export {
  runCreateCogTask,
  createCogInput,
  createCogOutput,
  type CreateCogInput,
  type CreateCogOutput,
} from './create-cog-task.ts';
