import { isCoreMachineError, permanentError, type TaskContext } from '@coremachine/core-machine';
import { registerBlobRaster, StacError } from '@coremachine/geo/stac';
import { gdalTaskError, useStorageForGdal } from '@coremachine/geo';
import {
  checkCog,
  COMPRESSIONS,
  createCog,
  describeRaster,
  nodataSchema,
  nodataToJson,
  rasterError,
  RESAMPLINGS,
  withTempDir,
  type Bounds,
  type CogCheck,
  type RasterDescription,
} from '@coremachine/geo/raster';
import { vsiazPath } from '@coremachine/storage';
import path from 'node:path';
import { z } from 'zod';
import type { Params } from './parameters.ts';
import { COG_CONTENT_TYPE } from './tiles.ts';

const bounds = z.tuple([z.number(), z.number(), z.number(), z.number()]);

/** Input of the `create_cog` task, planned from the validation result. */
export const createCogInput = z.object({
  blob_name: z.string(),
  container_name: z.string(),
  source_crs: z.string(),
  raster_type: z.string(),
  target_crs: z.string(),
  compression: z.enum(COMPRESSIONS),
  jpeg_quality: z.number().int().min(1).max(100).nullable(),
  overview_resampling: z.enum(RESAMPLINGS),
  reproject_resampling: z.enum(RESAMPLINGS),
  output_container: z.string(),
  output_blob_name: z.string(),
});
export type CreateCogInput = z.output<typeof createCogInput>;

export const createCogOutput = z.object({
  cog_blob: z.string(),
  cog_container: z.string(),
  /** Stable blob URL (never a SAS URL). */
  cog_url: z.string(),
  source_blob: z.string(),
  source_container: z.string(),
  reprojection_performed: z.boolean(),
  /** Blobs written beside the COG (`<cog>.aux.xml` holding category names a GeoTIFF cannot store). */
  sidecars: z.array(z.string()),
  /**
   * How the pixels a reprojection adds outside the source footprint are marked: the source's
   * nodata or alpha, a nodata value chosen outside the data range, an alpha band, or an
   * internal mask (JPEG/WebP); `none` when nothing was reprojected.
   */
  collar: z.object({
    mask: z.enum(['none', 'source_nodata', 'source_alpha', 'nodata', 'alpha', 'mask']),
    nodata: nodataSchema,
  }),
  source_crs: z.string(),
  target_crs: z.string(),
  bounds,
  bounds_4326: bounds,
  shape: z.tuple([z.number().int(), z.number().int()]),
  band_count: z.number().int(),
  dtype: z.string(),
  nodata: nodataSchema,
  size_mb: z.number(),
  compression: z.string(),
  jpeg_quality: z.number().nullable(),
  tile_size: z.tuple([z.number().int(), z.number().int()]),
  overview_levels: z.array(z.number().int()),
  overview_resampling: z.string(),
  reproject_resampling: z.string(),
  raster_type: z.string(),
  cog_warnings: z.array(z.string()),
  processing_time_seconds: z.number(),
  /** STAC item of the COG in the `cogs` collection; null when the machine has no STAC store (services.stac). */
  stac_item_id: z.string().nullable(),
});
export type CreateCogOutput = z.output<typeof createCogOutput>;

/** What both paths (single task, tiled assembly) made: the COG's layout check and description. */
export interface CheckedCog {
  check: CogCheck;
  info: RasterDescription & { crs: string; bounds_4326: Bounds };
}

/** Checks a COG just made against the layout rules and reads its georeferencing. */
export async function checkedCog(local: string, label: string): Promise<CheckedCog> {
  const check = await checkCog(local);
  if (!check.valid)
    throw rasterError(
      'COG_INVALID',
      `the COG made from ${label} breaks the COG layout rules: ${check.errors.join('; ')}`,
      check,
    );
  const info = await describeRaster(local);
  if (!info.bounds_4326 || !info.crs) throw rasterError('COG_INVALID', `the COG made from ${label} has no CRS`);
  return { check, info: { ...info, crs: info.crs, bounds_4326: info.bounds_4326 } };
}

/** Registers the uploaded COG's STAC item (null without a STAC store); STAC errors are permanent. */
export async function registerCogItem(
  ctx: Pick<TaskContext<unknown>, 'services' | 'db'>,
  container: string,
  blob: string,
  collection: string,
): Promise<{ id: string } | null> {
  const { stac, storage } = ctx.services;
  if (!stac) return null;
  return registerBlobRaster(ctx.db, stac.schema, storage, container, blob, { collection }).catch((err: unknown) => {
    throw err instanceof StacError
      ? permanentError(err.code, err.message, err.issues.length ? { issues: err.issues } : undefined)
      : err;
  });
}

/**
 * Uploads a finished COG, its sidecars first (the COG is registered, and read back by GDAL, only
 * once they are in place), then registers its STAC item. The uploads stage blocks and commit the
 * block list at the end, so a crash mid-upload leaves no partial blob. When the task is aborted
 * as an upload commits, or the registration fails, what this call committed is removed again
 * (only blobs whose ETag changed: an earlier COG of the same name is not this task's to remove);
 * a retry writes it anew. Shared by the single task and the tiled assembly.
 */
export async function publishCog(
  ctx: Pick<TaskContext<unknown>, 'services' | 'db' | 'signal'>,
  cog: {
    container: string;
    blob: string;
    local: string;
    sidecars: ReadonlyArray<{ file: string; blob: string }>;
    collection: string;
  },
): Promise<{ bytes: number; sidecars: string[]; stacItemId: string | null }> {
  const { storage } = ctx.services;
  await storage.ensureContainer(cog.container);
  const written = [...cog.sidecars.map((s) => s.blob), cog.blob];
  const versionOf = async (blob: string) => {
    const st = await storage.stat(cog.container, blob);
    return st.exists ? st.etag : null;
  };
  const before = new Map<string, string | null>();
  for (const blob of written) before.set(blob, await versionOf(blob));
  const removeWritten = async () => {
    for (const blob of written) {
      const now = await versionOf(blob).catch(() => null);
      if (now !== null && now !== before.get(blob)) await storage.delete(cog.container, blob).catch(() => false);
    }
  };
  const sidecars: string[] = [];
  let bytes: number;
  try {
    for (const { file, blob } of cog.sidecars) {
      await storage.uploadFile(cog.container, blob, file, { contentType: 'application/xml', signal: ctx.signal });
      sidecars.push(blob);
    }
    bytes = await storage.uploadFile(cog.container, cog.blob, cog.local, {
      contentType: COG_CONTENT_TYPE,
      signal: ctx.signal,
    });
    ctx.signal.throwIfAborted();
  } catch (err) {
    // An upload cut off leaves only uncommitted blocks (no blob), but one that committed as the
    // abort landed (or a sidecar before it) is a blob.
    if (ctx.signal.aborted) {
      await removeWritten();
      throw ctx.signal.reason;
    }
    throw err;
  }
  const stac = await registerCogItem(ctx, cog.container, cog.blob, cog.collection).catch(async (err: unknown) => {
    await removeWritten();
    throw err;
  });
  return { bytes, sidecars, stacItemId: stac?.id ?? null };
}

/** The `create_cog` result, the same from the single task and the tiled assembly. */
export function cogResult(o: {
  settings: Pick<
    CreateCogInput,
    | 'output_container'
    | 'output_blob_name'
    | 'source_crs'
    | 'compression'
    | 'jpeg_quality'
    | 'overview_resampling'
    | 'reproject_resampling'
    | 'raster_type'
  >;
  cogUrl: string;
  source: { blob: string; container: string };
  reprojected: boolean;
  sidecars: string[];
  collar: CreateCogOutput['collar'];
  made: CheckedCog;
  bytes: number;
  started: number;
  stacItemId: string | null;
}): CreateCogOutput {
  const { settings: input, made } = o;
  const { info, check } = made;
  return {
    cog_blob: input.output_blob_name,
    cog_container: input.output_container,
    cog_url: o.cogUrl,
    source_blob: o.source.blob,
    source_container: o.source.container,
    reprojection_performed: o.reprojected,
    sidecars: o.sidecars,
    collar: o.collar,
    source_crs: input.source_crs,
    target_crs: info.crs,
    bounds: info.bounds,
    bounds_4326: info.bounds_4326,
    shape: info.shape,
    band_count: info.band_count,
    dtype: info.dtype,
    nodata: info.nodata,
    size_mb: Math.round((o.bytes / (1024 * 1024)) * 1000) / 1000,
    compression: input.compression,
    jpeg_quality: input.compression === 'jpeg' || input.compression === 'webp' ? input.jpeg_quality : null,
    tile_size: check.tileSize ?? info.block_size,
    overview_levels: check.overviewLevels,
    overview_resampling: input.overview_resampling,
    reproject_resampling: input.reproject_resampling,
    raster_type: input.raster_type,
    cog_warnings: check.warnings,
    processing_time_seconds: Math.round(performance.now() - o.started) / 1000,
    stac_item_id: o.stacItemId,
  };
}

/**
 * Warps (if needed) and writes the COG in a task-private temporary folder, checks its layout
 * against the COG rules, then uploads it. The upload stages blocks and commits the block list
 * only at the end, so a crash mid-upload leaves no partial blob visible; a re-run writes the
 * same blob name.
 */
export async function runCreateCogTask(
  input: CreateCogInput,
  ctx: Pick<TaskContext<Params>, 'services' | 'progress' | 'log' | 'db' | 'signal'>,
): Promise<CreateCogOutput> {
  const started = performance.now();
  const { storage } = ctx.services;
  useStorageForGdal(storage.config);
  const label = `${input.container_name}/${input.blob_name}`;
  try {
    return await writeCog(input, ctx, label, started);
  } catch (err) {
    // Coded errors (ours, storage's) keep their code; anything GDAL threw is classified here,
    // its message naming the blob, never the task's temporary folder.
    if (ctx.signal.aborted) throw ctx.signal.reason;
    if (isCoreMachineError(err)) throw err;
    throw gdalTaskError(err, { file: label, paths: { [vsiazPath(input.container_name, input.blob_name)]: label } });
  }
}

async function writeCog(
  input: CreateCogInput,
  ctx: Pick<TaskContext<Params>, 'services' | 'progress' | 'log' | 'db' | 'signal'>,
  label: string,
  started: number,
): Promise<CreateCogOutput> {
  const { storage } = ctx.services;
  return withTempDir('cog', async (dir) => {
    const local = path.join(dir, path.basename(input.output_blob_name));
    const made = await createCog({
      source: vsiazPath(input.container_name, input.blob_name),
      label,
      destination: local,
      workDir: dir,
      sourceCrs: input.source_crs,
      targetCrs: input.target_crs,
      compression: input.compression,
      quality: input.jpeg_quality,
      overviewResampling: input.overview_resampling,
      reprojectResampling: input.reproject_resampling,
      onProgress: (fraction, note) => ctx.progress(fraction * 0.9, note),
      signal: ctx.signal,
    });
    const checked = await checkedCog(local, label);
    ctx.signal.throwIfAborted();
    ctx.progress(0.9, 'uploading');
    const published = await publishCog(ctx, {
      container: input.output_container,
      blob: input.output_blob_name,
      local,
      sidecars: made.sidecars.map((file) => ({ file, blob: `${input.output_blob_name}${file.slice(local.length)}` })),
      collection: 'cogs',
    });
    ctx.log.info('COG written', {
      cog: `${input.output_container}/${input.output_blob_name}`,
      bytes: published.bytes,
      options: made.creationOptions,
    });
    return cogResult({
      settings: input,
      cogUrl: storage.blobUrl(input.output_container, input.output_blob_name),
      source: { blob: input.blob_name, container: input.container_name },
      reprojected: made.reprojected,
      sidecars: published.sidecars,
      collar: { mask: made.collar.mask, nodata: nodataToJson(made.collar.nodata) },
      made: checked,
      bytes: published.bytes,
      started,
      stacItemId: published.stacItemId,
    });
  });
}
