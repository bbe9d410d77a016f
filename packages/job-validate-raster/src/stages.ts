import { defineStage } from '@coremachine/core-machine';
import { validationResultSchema } from '@coremachine/geo/raster';
import type { Params } from './parameters.ts';
import { runValidateTask, validateInput } from './validate-task.ts';

/** Stage 1 of 1: one task, key `validate`, that runs the five checks. */
export const validate = defineStage<Params>()({
  name: 'validate',
  description: 'CRS rules, bounds sanity, bit-depth policy, raster type detection, optimal COG settings',
  input: validateInput,
  output: validationResultSchema,
  plan: ({ params }) => [{ key: 'validate', input: params }],
  handler: (input, ctx) => runValidateTask(input, ctx.services),
});
