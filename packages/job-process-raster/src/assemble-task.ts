import path from 'node:path';
import { isAbortReason, isCoreMachineError, permanentError, type TaskContext } from '@coremachine/core-machine';
import { gdalTaskError, useStorageForGdal } from '@coremachine/geo';
import {
  assembleCog,
  checkCog,
  cogCreationOptions,
  describeRaster,
  rasterError,
  type Compression,
  type Resampling,
} from '@coremachine/geo/raster';
import { registerBlobRaster, StacError } from '@coremachine/geo/stac';
import { vsiazPath } from '@coremachine/storage';
import { z } from 'zod';
import type { CreateCogOutput } from './create-cog-task.ts';
import { deleteTmpPrefix, tiledAssembly, type TiledAssembly } from './tiled.ts';

const COG_CONTENT_TYPE = 'image/tiff; application=geotiff; profile=cloud-optimized';

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
  const check = await checkCog(local);
  if (!check.valid)
    throw rasterError(
      'COG_INVALID',
      `the COG made from ${label} breaks the COG layout rules: ${check.errors.join('; ')}`,
      check,
    );
  const info = await describeRaster(local);
  if (!info.bounds_4326 || !info.crs) throw rasterError('COG_INVALID', `the COG made from ${label} has no CRS`);
  ctx.progress(0.9, 'uploading');
  await storage.ensureContainer(input.output_container);
  const bytes = await storage.uploadFile(input.output_container, input.output_blob_name, local, {
    contentType: COG_CONTENT_TYPE,
    signal: ctx.signal,
  });
  ctx.log.info('COG assembled from windows', {
    cog: `${input.output_container}/${input.output_blob_name}`,
    windows: tiled.windows.length,
    bytes,
    options: creationOptions,
  });
  const stac = ctx.services.stac
    ? await registerBlobRaster(
        ctx.db,
        ctx.services.stac.schema,
        storage,
        input.output_container,
        input.output_blob_name,
        { collection: input.collection },
      ).catch((err: unknown) => {
        throw err instanceof StacError
          ? permanentError(err.code, err.message, err.issues.length ? { issues: err.issues } : undefined)
          : err;
      })
    : null;
  return {
    cog_blob: input.output_blob_name,
    cog_container: input.output_container,
    cog_url: storage.blobUrl(input.output_container, input.output_blob_name),
    source_blob: input.source_blob,
    source_container: input.source_container,
    reprojection_performed: tiled.reprojected,
    sidecars: [],
    collar: tiled.collar,
    source_crs: input.source_crs,
    target_crs: info.crs,
    bounds: info.bounds,
    bounds_4326: info.bounds_4326,
    shape: info.shape,
    band_count: info.band_count,
    dtype: info.dtype,
    nodata: info.nodata,
    size_mb: Math.round((bytes / (1024 * 1024)) * 1000) / 1000,
    compression: input.compression,
    jpeg_quality: input.compression === 'jpeg' || input.compression === 'webp' ? input.jpeg_quality : null,
    tile_size: check.tileSize ?? info.block_size,
    overview_levels: check.overviewLevels,
    overview_resampling: input.overview_resampling,
    reproject_resampling: input.reproject_resampling,
    raster_type: input.raster_type,
    cog_warnings: check.warnings,
    processing_time_seconds: Math.round(performance.now() - started) / 1000,
    stac_item_id: stac?.id ?? null,
  };
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
