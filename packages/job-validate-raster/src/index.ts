import { defineJob } from '@coremachine/core-machine';
import { validationResultSchema, type ValidationResult } from '@coremachine/geo/raster';
import { z } from 'zod';
import { parameters } from './parameters.ts';
import { validate } from './stages.ts';

export const result = z.object({
  job_type: z.literal('validate_raster'),
  blob_name: z.string(),
  container_name: z.string(),
  validation_status: z.literal('passed'),
  validation_result: validationResultSchema,
  tasks_executed: z.number().int(),
  task_status: z.string(),
});

/**
 * validate_raster: reads a raster in place and reports its CRS, bounds, bit depth, detected
 * type (with confidence and evidence) and the COG settings that suit it. Bad files fail the
 * job at once with a permanent error code.
 */
export default defineJob({
  type: 'validate_raster',
  version: '1.0.0',
  description: 'Validate a raster blob: CRS, bounds, bit depth, raster type and optimal COG settings',
  parameters,
  stages: [validate],
  services: ['storage'],
  result,
  aggregate: async (ctx) => {
    const [task] = await ctx.tasks('validate');
    return {
      job_type: 'validate_raster' as const,
      blob_name: ctx.params.blob_name,
      container_name: ctx.params.container_name,
      validation_status: 'passed' as const,
      validation_result: task!.output as ValidationResult,
      tasks_executed: 1,
      task_status: task!.status,
    };
  },
  queue: { concurrency: 2 },
});

export { parameters, validate };
export { validateRasterShape, crsSchema, type Params } from './parameters.ts';
export { runValidateTask, validateInput, type ValidateInput } from './validate-task.ts';
