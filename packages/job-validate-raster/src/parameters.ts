import { parseCrs, RASTER_TYPES } from '@coremachine/geo/raster';
import { blobPathSchema, containerNameSchema } from '@coremachine/storage';
import { z } from 'zod';

/** A CRS GDAL understands: `EPSG:32633`, WKT or a PROJ string. */
export const crsSchema = z
  .string()
  .trim()
  .min(1, 'must be a non-empty CRS such as "EPSG:4326"')
  .refine((v) => parseCrs(v) !== null, {
    error: (iss) => `${JSON.stringify(iss.input)} is not a CRS GDAL understands (try "EPSG:4326")`,
  });

/** Parameters shared by validate_raster and process_raster. */
export const validateRasterShape = {
  blob_name: blobPathSchema.describe('Path of the raster in the container'),
  container_name: containerNameSchema.default('bronze').describe('Container holding the raster (default bronze)'),
  input_crs: crsSchema
    .optional()
    .describe("CRS to assume when the file has none; must agree with the file's CRS when it has one"),
  raster_type: z
    .enum(['auto', ...RASTER_TYPES])
    .default('auto')
    .describe('Expected raster type; auto detects it'),
  strict_mode: z
    .boolean()
    .default(false)
    .describe('Fail on bit-depth policy violations (64-bit data) instead of warning'),
};

export const parameters = z.strictObject(validateRasterShape);
export type Params = z.output<typeof parameters>;
