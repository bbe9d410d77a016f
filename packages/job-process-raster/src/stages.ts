import { defineStage, outputsOf } from '@coremachine/core-machine';
import {
  cogCreationOptions,
  COMPRESSIONS,
  RESAMPLINGS,
  validationResultSchema,
  type ValidationResult,
} from '@coremachine/geo/raster';
import { runValidateTask, validateInput } from '@coremachine/job-validate-raster';
import { z } from 'zod';
import { runAssembleTask } from './assemble-task.ts';
import { createCogInput, createCogOutput, runCreateCogTask } from './create-cog-task.ts';
import { cogBlobName, type Params } from './parameters.ts';
import { runTileSetTask, tileSetInput, tilesOutput, tilesPrefixFor } from './tiles.ts';
import {
  isTiled,
  planTiling,
  runWindowTask,
  sweepTmp,
  tiledAssembly,
  tilingPlan,
  tmpPrefix,
  WINDOW_MAX_ATTEMPTS,
  windowTaskInput,
  windowTaskOutput,
  windowTasks,
} from './tiled.ts';

const stage = defineStage<Params>();

/** The COG settings of a job: the user's overrides, else the detected type's. */
export function chosenSettings(params: Params, v: ValidationResult) {
  const settings = v.raster_type.optimal_cog_settings;
  const compression = params.compression ?? settings.compression;
  return {
    compression,
    jpeg_quality:
      compression === 'jpeg' || compression === 'webp' ? (params.jpeg_quality ?? settings.jpeg_quality ?? 85) : null,
    overview_resampling: params.overview_resampling ?? settings.overview_resampling,
    reproject_resampling: params.reproject_resampling ?? settings.reproject_resampling,
  };
}

/** What the validate task needs to plan the tiled path when the source is large. */
const tilingRequest = z.object({
  target_crs: z.string(),
  compression: z.enum(COMPRESSIONS).nullable(),
  reproject_resampling: z.enum(RESAMPLINGS).nullable(),
  threshold_mb: z.number().nullable(),
  window_size: z.number().int().nullable(),
  /** Tile whatever the size (output `tiles`). */
  always: z.boolean().default(false),
});

const validateOutput = validationResultSchema.extend({ tiling: tilingPlan.nullable().optional() });

/** Stage 1: the same five checks as validate_raster; for a large source, the tiled plan (grid, windows). */
export const validate = stage({
  name: 'validate',
  description:
    'CRS rules, bounds sanity, bit-depth policy, raster type detection, optimal COG settings; the window grid of a large source',
  input: validateInput.extend({ tiling: tilingRequest.optional() }),
  output: validateOutput,
  plan: ({ params }) => [
    {
      key: 'validate',
      input: {
        blob_name: params.blob_name,
        container_name: params.container_name,
        raster_type: params.raster_type,
        strict_mode: params.strict_mode,
        ...(params.input_crs !== undefined ? { input_crs: params.input_crs } : {}),
        tiling: {
          target_crs: params.target_crs,
          compression: params.compression ?? null,
          reproject_resampling: params.reproject_resampling ?? null,
          threshold_mb: params.tiled_threshold_mb ?? null,
          window_size: params.window_size ?? null,
          always: params.output === 'tiles',
        },
      },
    },
  ],
  handler: async ({ tiling, ...input }, ctx): Promise<z.output<typeof validateOutput>> => {
    const v = await runValidateTask(input, ctx.services);
    if (!tiling || (!tiling.always && !isTiled(v.shape, v.band_count, v.dtype, tiling.threshold_mb ?? undefined)))
      return v;
    const settings = v.raster_type.optimal_cog_settings;
    const plan = await planTiling({
      sources: [{ container: input.container_name, blob: input.blob_name, crs: v.source_crs }],
      targetCrs: tiling.target_crs,
      compression: tiling.compression ?? settings.compression,
      resampling: tiling.reproject_resampling ?? settings.reproject_resampling,
      windowSize: tiling.window_size ?? undefined,
      collar: true,
      storage: ctx.services.storage,
    });
    return { ...v, tiling: plan };
  },
});

/** Stage 2 (tiled path only; no task below the threshold): one window of the target grid per task. */
export const windows = stage({
  name: 'windows',
  description:
    'Large sources only: warp one window of the target grid per task (read through /vsiaz/) into a temporary GeoTIFF',
  input: windowTaskInput,
  output: windowTaskOutput,
  plan: async (ctx) => {
    const [validated] = outputsOf(validate, ctx.previous);
    const tiling = validated?.output.tiling;
    if (!validated || !tiling) return [];
    // The sweep: windows left by failed or cancelled jobs whose cleanup did not run.
    await sweepTmp(ctx, ctx.jobType).catch((err: unknown) =>
      ctx.log.warn('sweep of temporary windows failed', { error: String(err) }),
    );
    const { params } = ctx;
    const settings = chosenSettings(params, validated.output);
    return windowTasks(
      tiling,
      [{ container: params.container_name, blob: params.blob_name, crs: validated.output.source_crs }],
      ctx.jobType,
      ctx.jobId,
      undefined,
      params.output === 'tiles'
        ? {
            container: params.output_container,
            prefix: tilesPrefixFor(cogBlobName(params.blob_name)),
            creationOptions: cogCreationOptions({
              compression: settings.compression,
              quality: settings.jpeg_quality,
              overviewResampling: settings.overview_resampling,
            }),
          }
        : undefined,
    );
  },
  handler: (input, ctx) => runWindowTask(input, ctx),
  retry: { maxAttempts: WINDOW_MAX_ATTEMPTS },
});

/** Stage 3: reproject and write the COG (or, tiled, assemble it from the windows). */
export const createCog = stage({
  name: 'create_cog',
  description: 'Reproject to target_crs and write a Cloud-Optimized GeoTIFF to the output container',
  input: createCogInput.extend({ tiled: tiledAssembly.optional(), tiles: tileSetInput.optional() }),
  output: z.union([createCogOutput, tilesOutput]),
  plan: async (ctx) => {
    const { params } = ctx;
    const [validated] = await ctx.outputs(validate);
    if (!validated) return [];
    const v = validated.output;
    const tiling = v.tiling;
    const single = {
      blob_name: params.blob_name,
      container_name: params.container_name,
      source_crs: v.source_crs,
      raster_type: v.raster_type.detected_type,
      target_crs: params.target_crs,
      ...chosenSettings(params, v),
      output_container: params.output_container,
      output_blob_name: cogBlobName(params.blob_name),
    };
    if (!tiling) return [{ key: 'create_cog', input: single }];
    const done = outputsOf(windows, ctx.previous);
    if (params.output === 'tiles')
      return [
        {
          key: 'create_cog',
          input: {
            ...single,
            tiles: {
              container: params.output_container,
              prefix: tilesPrefixFor(cogBlobName(params.blob_name)),
              tile_size: tiling.window_size,
              tiles: done
                .map((t) => ({ key: t.output.key, blob: t.output.blob }))
                .sort((a, b) => a.key.localeCompare(b.key)),
              title: `${params.container_name}/${params.blob_name}`,
            },
          },
        },
      ];
    return [
      {
        key: 'create_cog',
        input: {
          ...single,
          tiled: {
            tmp_container: tiling.tmp_container,
            tmp_prefix: tmpPrefix(ctx.jobType, ctx.jobId),
            windows: done.map((t) => t.output.blob).sort(),
            reprojected: tiling.reproject,
            collar: tiling.collar,
            category_names: tiling.category_names,
          },
        },
      },
    ];
  },
  handler: (input, ctx) =>
    input.tiles
      ? runTileSetTask(input.tiles, ctx)
      : input.tiled
        ? runAssembleTask(
            {
              ...input,
              label: `${input.container_name}/${input.blob_name}`,
              source_blob: input.blob_name,
              source_container: input.container_name,
              collection: 'cogs',
              tiled: input.tiled,
            },
            ctx,
          )
        : runCreateCogTask(input, ctx),
  leaseSeconds: 120,
});
