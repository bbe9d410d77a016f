import { permanentError, registerErrorCodes, type TaskError } from '@coremachine/core-machine';
import gdal from 'gdal-async';
import { parseCrs } from './crs.ts';

/** Permanent codes of a mosaic whose inputs cannot go into one raster; each message names the file. */
export const MOSAIC_ERROR_CODES = [
  'RASTERS_NONE',
  'RASTER_BAND_COUNT_MISMATCH',
  'RASTER_DTYPE_MISMATCH',
  'RASTER_NODATA_MISMATCH',
  'RASTER_CRS_NOT_REPROJECTABLE',
] as const;
export type MosaicErrorCode = (typeof MOSAIC_ERROR_CODES)[number];

const bad = (meaning: string) => ({ meaning, permanent: true, httpStatus: 422 });
registerErrorCodes({
  RASTERS_NONE: bad('no input raster matched'),
  RASTER_BAND_COUNT_MISMATCH: bad('an input raster has another band count than the first'),
  RASTER_DTYPE_MISMATCH: bad('an input raster has another data type than the first'),
  RASTER_NODATA_MISMATCH: bad('an input raster has another nodata value than the first'),
  RASTER_CRS_NOT_REPROJECTABLE: bad('an input raster has a CRS that cannot be transformed to the target CRS'),
});

/** A permanent `TaskError` with one of the mosaic codes. */
export function mosaicError(code: MosaicErrorCode, message: string, detail?: unknown): TaskError {
  return permanentError(code, message, detail);
}

/** What a mosaic needs to know of each input, read from its header. */
export interface MosaicInputInfo {
  label: string;
  bandCount: number;
  dtype: string;
  nodata: number | null;
  crs: string | null;
}

/** The header facts of an open raster that decide whether it can join a mosaic. */
export function mosaicInputInfo(ds: gdal.Dataset, label: string): MosaicInputInfo {
  const band = ds.bands.get(1);
  return {
    label,
    bandCount: ds.bands.count(),
    dtype: band.dataType ?? 'Unknown',
    nodata: band.noDataValue,
    crs: ds.srs?.toWKT() ?? null,
  };
}

const sameNodata = (a: number | null, b: number | null) =>
  a === b || (a !== null && b !== null && Number.isNaN(a) && Number.isNaN(b));

/**
 * Throws the first incompatibility of `inputs` against the first input: band count, data type,
 * nodata value, and a CRS that transforms to `targetCrs` (any CRS GDAL can transform is fine:
 * inputs in different CRSs are reprojected onto one grid).
 */
export function checkMosaicInputs(inputs: readonly MosaicInputInfo[], targetCrs: string): void {
  const first = inputs[0];
  if (!first) throw mosaicError('RASTERS_NONE', 'no input raster to mosaic');
  const target = targetCrs.toLowerCase() === 'native' ? null : parseCrs(targetCrs);
  for (const input of inputs) {
    if (input.bandCount !== first.bandCount)
      throw mosaicError(
        'RASTER_BAND_COUNT_MISMATCH',
        `${input.label} has ${input.bandCount} band(s), ${first.label} has ${first.bandCount}`,
      );
    if (input.dtype !== first.dtype)
      throw mosaicError('RASTER_DTYPE_MISMATCH', `${input.label} is ${input.dtype}, ${first.label} is ${first.dtype}`);
    if (!sameNodata(input.nodata, first.nodata))
      throw mosaicError(
        'RASTER_NODATA_MISMATCH',
        `${input.label} has nodata ${String(input.nodata)}, ${first.label} has ${String(first.nodata)}`,
      );
    if (target && input.crs) {
      const srs = parseCrs(input.crs);
      if (!srs || !transformable(srs, target))
        throw mosaicError(
          'RASTER_CRS_NOT_REPROJECTABLE',
          `the CRS of ${input.label} cannot be transformed to ${targetCrs}`,
        );
    }
  }
}

function transformable(from: gdal.SpatialReference, to: gdal.SpatialReference): boolean {
  if (from.isSame(to)) return true;
  try {
    // Throws when GDAL has no transformation between them (a local engineering CRS has none).
    new gdal.CoordinateTransformation(from, to);
    return true;
  } catch {
    return false;
  }
}
