import { defineStage, outputsOf } from '@coremachine/core-machine';
import { validationResultSchema } from '@coremachine/geo/raster';
import { runValidateTask, validateInput } from '@coremachine/job-validate-raster';
import { createCogInput, createCogOutput, runCreateCogTask } from './create-cog-task.ts';
import { cogBlobName, type Params } from './parameters.ts';

const stage = defineStage<Params>();

/** Stage 1: the same five checks as validate_raster. */
export const validate = stage({
  name: 'validate',
  description: 'CRS rules, bounds sanity, bit-depth policy, raster type detection, optimal COG settings',
  input: validateInput,
  output: validationResultSchema,
  plan: ({ params }) => [
    {
      key: 'validate',
      input: {
        blob_name: params.blob_name,
        container_name: params.container_name,
        raster_type: params.raster_type,
        strict_mode: params.strict_mode,
        ...(params.input_crs !== undefined ? { input_crs: params.input_crs } : {}),
      },
    },
  ],
  handler: (input, ctx) => runValidateTask(input, ctx.services),
});

/** Stage 2: reproject and write the COG with the type's settings (or the user's overrides). */
export const createCog = stage({
  name: 'create_cog',
  description: 'Reproject to target_crs and write a Cloud-Optimized GeoTIFF to the output container',
  input: createCogInput,
  output: createCogOutput,
  plan: ({ params, previous }) => {
    const [validated] = outputsOf(validate, previous);
    if (!validated) return [];
    const v = validated.output;
    const settings = v.raster_type.optimal_cog_settings;
    const compression = params.compression ?? settings.compression;
    return [
      {
        key: 'create_cog',
        input: {
          blob_name: params.blob_name,
          container_name: params.container_name,
          source_crs: v.source_crs,
          raster_type: v.raster_type.detected_type,
          target_crs: params.target_crs,
          compression,
          jpeg_quality:
            compression === 'jpeg' || compression === 'webp'
              ? (params.jpeg_quality ?? settings.jpeg_quality ?? 85)
              : null,
          overview_resampling: params.overview_resampling ?? settings.overview_resampling,
          reproject_resampling: params.reproject_resampling ?? settings.reproject_resampling,
          output_container: params.output_container,
          output_blob_name: cogBlobName(params.blob_name),
        },
      },
    ];
  },
  handler: (input, ctx) => runCreateCogTask(input, ctx),
  leaseSeconds: 120,
});
