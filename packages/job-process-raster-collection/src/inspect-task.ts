import { isCoreMachineError, type TaskContext } from '@coremachine/core-machine';
import { gdalTaskError, useStorageForGdal } from '@coremachine/geo';
import {
  checkMosaicInputs,
  isEngineeringCrs,
  mosaicError,
  mosaicInputInfo,
  nodataSchema,
  nodataToJson,
  openRaster,
  parseCrs,
  rasterError,
  type MosaicInputInfo,
} from '@coremachine/geo/raster';
import { planTiling, tilingPlan, windowSourceSchema, type WindowSource } from '@coremachine/job-process-raster';
import { vsiazPath } from '@coremachine/storage';
import { z } from 'zod';
import type { Params } from './parameters.ts';

const bounds = z.tuple([z.number(), z.number(), z.number(), z.number()]);

export const inspectOutput = z.object({
  inputs: z.array(windowSourceSchema.extend({ bounds: bounds.nullable() })),
  tiling: tilingPlan,
  band_count: z.number().int(),
  dtype: z.string(),
  nodata: nodataSchema,
});
export type InspectOutput = z.output<typeof inspectOutput>;

const RASTER_EXT = /\.tiff?$/i;

/** The input blob names: the list given, or every GeoTIFF under the prefix (in name order). */
async function inputNames(params: Params, ctx: Pick<TaskContext<Params>, 'services' | 'signal'>): Promise<string[]> {
  if (params.blob_names) return params.blob_names;
  const names: string[] = [];
  for await (const b of ctx.services.storage.list(params.container_name, {
    prefix: params.prefix!,
    signal: ctx.signal,
  }))
    if (RASTER_EXT.test(b.name)) names.push(b.name);
  if (!names.length)
    throw mosaicError('RASTERS_NONE', `no GeoTIFF under ${params.container_name}/${params.prefix} to mosaic`);
  return names.sort();
}

/**
 * Reads every input's header through /vsiaz/ (no pixels), checks they fit one mosaic (band
 * count, data type, nodata, a CRS that transforms to the target) and plans the grid and windows.
 */
export async function runInspectTask(
  params: Params,
  ctx: Pick<TaskContext<Params>, 'services' | 'signal'>,
): Promise<InspectOutput> {
  const { storage } = ctx.services;
  useStorageForGdal(storage.config);
  const names = await inputNames(params, ctx);
  const infos: MosaicInputInfo[] = [];
  const inputs: InspectOutput['inputs'] = [];
  for (const blob of names) {
    const label = `${params.container_name}/${blob}`;
    const stat = await storage.stat(params.container_name, blob, { signal: ctx.signal });
    if (!stat.exists) throw rasterError('BLOB_NOT_FOUND', `input ${label} does not exist`);
    const path = vsiazPath(params.container_name, blob);
    const ds = await openRaster(path, label);
    try {
      const info = mosaicInputInfo(ds, label);
      const own = ds.srs && !isEngineeringCrs(ds.srs) ? ds.srs.toWKT() : null;
      const crs = own ?? (params.input_crs ? parseCrs(params.input_crs)?.toWKT() : undefined);
      if (!crs) throw rasterError('CRS_MISSING', `${label} has no CRS: give input_crs`);
      infos.push({ ...info, crs });
      const gt = ds.geoTransform;
      const { x, y } = ds.rasterSize;
      const b: [number, number, number, number] | null = gt
        ? [
            Math.min(gt[0]!, gt[0]! + gt[1]! * x),
            Math.min(gt[3]!, gt[3]! + gt[5]! * y),
            Math.max(gt[0]!, gt[0]! + gt[1]! * x),
            Math.max(gt[3]!, gt[3]! + gt[5]! * y),
          ]
        : null;
      inputs.push({ container: params.container_name, blob, crs, bounds: b });
    } catch (err) {
      if (isCoreMachineError(err)) throw err;
      throw gdalTaskError(err, { file: label, paths: { [path]: label } });
    } finally {
      ds.close();
    }
  }
  checkMosaicInputs(infos, params.target_crs);
  const sources: WindowSource[] = inputs.map(({ container, blob, crs }) => ({ container, blob, crs }));
  const tiling = await planTiling({
    sources,
    targetCrs: params.target_crs === 'native' ? infos[0]!.crs! : params.target_crs,
    compression: params.compression,
    resampling: params.reproject_resampling,
    windowSize: params.window_size,
    collar: true,
    storage,
  });
  // Input extents are only comparable with window extents in the grid's own CRS.
  const onGrid = !tiling.reproject;
  return {
    inputs: inputs.map((i) => ({ ...i, bounds: onGrid ? i.bounds : null })),
    tiling,
    band_count: infos[0]!.bandCount,
    dtype: infos[0]!.dtype,
    nodata: nodataToJson(infos[0]!.nodata),
  };
}
