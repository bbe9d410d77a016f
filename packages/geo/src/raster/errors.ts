import { permanentError, type TaskError } from '@coremachine/core-machine';

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
  'RASTER_TYPE_MISMATCH',
  'BIT_DEPTH_POLICY_VIOLATION',
  'COMPRESSION_UNSUPPORTED',
  'COG_INVALID',
] as const;

export type RasterErrorCode = (typeof RASTER_ERROR_CODES)[number];

/** A permanent `TaskError` with one of the raster codes. */
export function rasterError(code: RasterErrorCode, message: string, detail?: unknown): TaskError {
  return permanentError(code, message, detail);
}

/** True when a GDAL error speaks of the way to the data (network, storage), not of the data: retry it. */
export { isTransientGdalError } from '../gdal/errors.ts';
