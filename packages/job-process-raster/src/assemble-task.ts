import path from 'node:path';
import { isAbortReason, isCoreMachineError, type TaskContext } from '@coremachine/core-machine';
import { gdalTaskError, useStorageForGdal } from '@coremachine/geo';
import { assembleCog, cogCreationOptions, type Compression, type Resampling } from '@coremachine/geo/raster';
import { vsiazPath } from '@coremachine/storage';
import { z } from 'zod';
import { checkedCog, cogResult, publishCog, type CreateCogOutput } from './create-cog-task.ts';
import { deleteTmpPrefix, tiledAssembly, writeCategorySidecar, type TiledAssembly } from './tiled.ts';

export { tiledAssembly };

/** What the assembly needs besides the windows: the COG options and where it goes. */
export interface AssembleTaskInput {
  /** For messages and the result: the source (or `<n> inputs` of a mosaic). */
  label: string;
  source_blob: string;
  source_container: string;
  source_crs: string;
  raster_type: string;
  compression: Compression;
  jpeg_quality: number | null;
  overview_resampling: Resampling;
  reproject_resampling: Resampling;
  output_container: string;
  output_blob_name: string;
  /** STAC collection the COG is registered in (process_raster's `cogs`). */
  collection: string;
  tiled: TiledAssembly;
}

type AssembleContext = Pick<TaskContext<unknown>, 'services' | 'progress' | 'log' | 'db' | 'signal' | 'tempDir'>;

/** True when the job ends with this error (its windows will never be assembled). */
function endsJob(err: unknown, signal: AbortSignal): boolean {
  if (signal.aborted) return isAbortReason(signal.reason, 'cancelled') || isAbortReason(signal.reason, 'job_failed');
  return isCoreMachineError(err) && err.permanent;
}

/**
 * The tiled path's last stage: a VRT over the windows (read in place through `/vsiaz/`), GDAL's
 * COG driver with overviews from full resolution into the task's folder, the COG layout check,
 * the upload (blocks committed at the end: no partial blob is ever visible), the STAC item as
 * the single path registers it, then the temporary windows deleted. A permanent failure or a
 * cancel deletes them too; a transient failure keeps them for the retry.
 */
export async function runAssembleTask(input: AssembleTaskInput, ctx: AssembleContext): Promise<CreateCogOutput> {
  const started = performance.now();
  const { storage } = ctx.services;
  useStorageForGdal(storage.config);
  const { tiled } = input;
  try {
    const out = await assemble(input, ctx, started);
    await deleteTmpPrefix(storage, tiled.tmp_container, tiled.tmp_prefix);
    return out;
  } catch (err) {
    if (endsJob(err, ctx.signal)) await deleteTmpPrefix(storage, tiled.tmp_container, tiled.tmp_prefix).catch(() => 0);
    if (ctx.signal.aborted) throw ctx.signal.reason;
    if (isCoreMachineError(err)) throw err;
    throw gdalTaskError(err, { file: input.label });
  }
}

async function assemble(input: AssembleTaskInput, ctx: AssembleContext, started: number): Promise<CreateCogOutput> {
  const { storage } = ctx.services;
  const { tiled, label } = input;
  const dir = await ctx.tempDir();
  const local = path.join(dir, path.basename(input.output_blob_name));
  const creationOptions = cogCreationOptions({
    compression: input.compression,
    quality: input.jpeg_quality,
    overviewResampling: input.overview_resampling,
  });
  ctx.progress(0, `assembling ${tiled.windows.length} windows`);
  await assembleCog({
    windows: tiled.windows.map((w) => vsiazPath(tiled.tmp_container, w)),
    destination: local,
    creationOptions,
    label,
    onProgress: (fraction, note) => ctx.progress(fraction * 0.9, note),
  });
  ctx.signal.throwIfAborted();
  // The class labels a GeoTIFF cannot hold, in `<cog>.aux.xml` as the single task writes them.
  const sidecar = await writeCategorySidecar(local, tiled.category_names);
  const checked = await checkedCog(local, label);
  ctx.progress(0.9, 'uploading');
  const published = await publishCog(ctx, {
    container: input.output_container,
    blob: input.output_blob_name,
    local,
    sidecars: sidecar ? [{ file: sidecar, blob: `${input.output_blob_name}.aux.xml` }] : [],
    collection: input.collection,
  });
  ctx.log.info('COG assembled from windows', {
    cog: `${input.output_container}/${input.output_blob_name}`,
    windows: tiled.windows.length,
    bytes: published.bytes,
    options: creationOptions,
  });
  return cogResult({
    settings: input,
    cogUrl: storage.blobUrl(input.output_container, input.output_blob_name),
    source: { blob: input.source_blob, container: input.source_container },
    reprojected: tiled.reprojected,
    sidecars: published.sidecars,
    collar: tiled.collar,
    made: checked,
    bytes: published.bytes,
    started,
    stacItemId: published.stacItemId,
  });
}

/** How a tiled result records the windows (appended to the result by the aggregate). */
export const tilingSummary = z.object({
  windows: z.number().int(),
  window_size: z.number().int(),
  reused: z.number().int(),
  /** Seconds of window work summed over tasks, and the slowest window. */
  window_seconds_total: z.number(),
  window_seconds_max: z.number(),
  peak_rss_mb_max: z.number(),
});
