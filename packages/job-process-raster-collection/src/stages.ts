import { defineStage, outputsOf } from '@coremachine/core-machine';
import {
  createCogInput,
  createCogOutput,
  runAssembleTask,
  runWindowTask,
  sweepTmp,
  runTileSetTask,
  tiledAssembly,
  tileSetInput,
  tilesOutput,
  tilesPrefixFor,
  tmpPrefix,
  WINDOW_MAX_ATTEMPTS,
  windowTaskInput,
  windowTaskOutput,
  windowTasks,
  type WindowSource,
} from '@coremachine/job-process-raster';
import { cogCreationOptions } from '@coremachine/geo/raster';
import { z } from 'zod';
import { inspectOutput, runInspectTask } from './inspect-task.ts';
import type { Params } from './parameters.ts';

const stage = defineStage<Params>();

/** What the inputs are called in messages and in `cog.source_blob`: the prefix, or the first blob and a count. */
export function inputsLabel(params: Params): string {
  if (params.prefix !== undefined) return params.prefix;
  const [first, ...rest] = params.blob_names!;
  return rest.length ? `${first} (+${rest.length})` : first!;
}

/** Stage 1: list the inputs, read their headers, check they fit one mosaic, plan the grid. */
export const inspect = stage({
  name: 'inspect',
  description: 'List the inputs, check band count, data type, nodata and CRS agree, plan the target grid and windows',
  input: z.object({}),
  output: inspectOutput,
  plan: () => [{ key: 'inspect', input: {} }],
  handler: (_input, ctx) => runInspectTask(ctx.params, ctx),
});

const intersects = (a: readonly number[], b: readonly number[]) =>
  a[0]! < b[2]! && b[0]! < a[2]! && a[1]! < b[3]! && b[1]! < a[3]!;

/** Stage 2: one window of the target grid per task, from the inputs that touch it. */
export const windows = stage({
  name: 'windows',
  description: 'Mosaic one window of the target grid per task (inputs read through /vsiaz/) into a temporary GeoTIFF',
  input: windowTaskInput,
  output: windowTaskOutput,
  plan: async (ctx) => {
    const [inspected] = outputsOf(inspect, ctx.previous);
    if (!inspected) return [];
    const { inputs, tiling } = inspected.output;
    await sweepTmp(ctx, ctx.jobType).catch((err: unknown) =>
      ctx.log.warn('sweep of temporary windows failed', { error: String(err) }),
    );
    const all: WindowSource[] = inputs.map(({ container, blob, crs }) => ({ container, blob, crs }));
    const { params } = ctx;
    const tiles =
      params.output === 'tiles'
        ? {
            container: params.output_container,
            prefix: tilesPrefixFor(params.output_blob_name),
            creationOptions: cogCreationOptions({
              compression: params.compression,
              quality: params.jpeg_quality ?? 85,
              overviewResampling: params.overview_resampling,
            }),
          }
        : undefined;
    return windowTasks(
      tiling,
      all,
      ctx.jobType,
      ctx.jobId,
      {
        sourcesOf: (extent) => {
          const touching = inputs.filter((i) => i.bounds === null || intersects(i.bounds, extent));
          // A window in a gap between inputs still needs one input for its VRT (it stays empty).
          return (touching.length ? touching : inputs.slice(0, 1)).map(({ container, blob, crs }) => ({
            container,
            blob,
            crs,
          }));
        },
      },
      tiles,
    );
  },
  handler: (input, ctx) => runWindowTask(input, ctx),
  retry: { maxAttempts: WINDOW_MAX_ATTEMPTS },
});

/** Stage 3: the windows assembled into one COG (overviews from full resolution), its STAC item, windows deleted. */
export const createCog = stage({
  name: 'create_cog',
  description: 'Assemble the windows into one Cloud-Optimized GeoTIFF in the output container and register it',
  input: createCogInput.extend({ tiled: tiledAssembly, tiles: tileSetInput.optional() }),
  output: z.union([createCogOutput, tilesOutput]),
  plan: async (ctx) => {
    const { params } = ctx;
    const [inspected] = await ctx.outputs(inspect);
    if (!inspected) return [];
    const { tiling, inputs } = inspected.output;
    const done = outputsOf(windows, ctx.previous);
    const lossy = params.compression === 'jpeg' || params.compression === 'webp';
    return [
      {
        key: 'create_cog',
        input: {
          blob_name: inputsLabel(params),
          container_name: params.container_name,
          source_crs: inputs[0]!.crs,
          raster_type: 'mosaic',
          target_crs: params.target_crs,
          compression: params.compression,
          jpeg_quality: lossy ? (params.jpeg_quality ?? 85) : null,
          overview_resampling: params.overview_resampling,
          reproject_resampling: params.reproject_resampling,
          output_container: params.output_container,
          output_blob_name: params.output_blob_name,
          tiled: {
            tmp_container: tiling.tmp_container,
            tmp_prefix: tmpPrefix(ctx.jobType, ctx.jobId),
            windows: done.map((t) => t.output.blob).sort(),
            reprojected: tiling.reproject,
            collar: tiling.collar,
            category_names: tiling.category_names,
          },
          ...(params.output === 'tiles'
            ? {
                tiles: {
                  container: params.output_container,
                  prefix: tilesPrefixFor(params.output_blob_name),
                  tile_size: tiling.window_size,
                  tiles: done
                    .map((t) => ({ key: t.output.key, blob: t.output.blob }))
                    .sort((a, b) => a.key.localeCompare(b.key)),
                  title: `${params.container_name}/${inputsLabel(params)}`,
                },
              }
            : {}),
        },
      },
    ];
  },
  handler: (input, ctx) =>
    input.tiles
      ? runTileSetTask(input.tiles, ctx)
      : runAssembleTask(
          {
            ...input,
            label: `${input.container_name}/${input.blob_name}`,
            source_blob: input.blob_name,
            source_container: input.container_name,
            collection: 'cogs',
          },
          ctx,
        ),
});
