import { permanentError, registerErrorCodes, type TaskError } from '@coremachine/core-machine';

/**
 * Permanent error codes raised by raster validation and COG creation. A permanent error
 * settles the task as failed at once: retrying cannot change a file's content.
 */
export const RASTER_ERROR_CODES = [
  'BLOB_NOT_FOUND',
  'FILE_UNREADABLE',
  'NOT_A_RASTER',
  'CRS_MISSING',
  'CRS_MISMATCH',
  'CRS_NOT_GEOREFERENCED',
  'CRS_TRANSFORM_FAILED',
  'RASTER_NO_GEOTRANSFORM',
  'RASTER_TYPE_MISMATCH',
  'BIT_DEPTH_POLICY_VIOLATION',
  'COMPRESSION_UNSUPPORTED',
  'COG_INVALID',
] as const;

export type RasterErrorCode = (typeof RASTER_ERROR_CODES)[number];

const fileError = (meaning: string) => ({ meaning, permanent: true, httpStatus: 422 });
registerErrorCodes({
  RASTER_TYPE_MISMATCH: fileError('the raster does not look like the raster_type given'),
  BIT_DEPTH_POLICY_VIOLATION: fileError('the raster uses 64-bit samples and strict_mode is on'),
  COMPRESSION_UNSUPPORTED: fileError('the compression asked for cannot hold this raster'),
  COG_INVALID: { meaning: 'the COG written breaks the COG layout rules', permanent: true, httpStatus: 500 },
  RASTER_NO_CRS: fileError('the raster has no CRS'),
  RASTER_NO_GEOTRANSFORM: fileError('the raster has no geotransform'),
  RASTER_UNREADABLE: fileError('the blob is not a raster GDAL can read'),
  RASTERS_NOT_CATALOGUED: fileError('some rasters of a batch could not be catalogued (each with its reason)'),
  RASTERS_RETRYABLE: {
    meaning: 'some rasters of a batch hit storage or network errors (retried)',
    permanent: false,
    httpStatus: 503,
  },
});

/** A permanent `TaskError` with one of the raster codes. */
export function rasterError(code: RasterErrorCode, message: string, detail?: unknown): TaskError {
  return permanentError(code, message, detail);
}

/** True when a GDAL error speaks of the way to the data (network, storage), not of the data: retry it. */
export { isTransientGdalError } from '../gdal/errors.ts';
