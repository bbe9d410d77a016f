import type { StacValidationIssue } from './validate.ts';

export type StacErrorCode =
  | 'STAC_INVALID'
  | 'STAC_COLLECTION_NOT_FOUND'
  | 'STAC_INVALID_QUERY'
  | 'RASTER_NO_CRS'
  | 'RASTER_NO_GEOTRANSFORM'
  | 'CRS_NOT_GEOREFERENCED'
  | 'CRS_TRANSFORM_FAILED'
  | 'TABLE_NOT_FOUND'
  | 'NO_GEOMETRY_COLUMN'
  | 'SRID_MISSING'
  | 'EMPTY_TABLE'
  | 'BLOB_NOT_FOUND';

/**
 * Raised by the item builders, the STAC store and search: all are the caller's input errors. Job handlers turn it into a permanent task error (same
 * code); the STAC API maps it to 400/404.
 */
export class StacError extends Error {
  readonly code: StacErrorCode;
  readonly issues: StacValidationIssue[];
  constructor(code: StacErrorCode, message: string, issues: StacValidationIssue[] = []) {
    super(message);
    this.name = 'StacError';
    this.code = code;
    this.issues = issues;
  }
}
