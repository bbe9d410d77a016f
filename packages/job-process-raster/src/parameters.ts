import { COMPRESSIONS, RESAMPLINGS } from '@coremachine/geo/raster';
import { crsSchema, validateRasterShape } from '@coremachine/job-validate-raster';
import { containerNameSchema } from '@coremachine/storage';
import { z } from 'zod';

/** process_raster parameters: validate_raster's, plus the COG options. */
export const parameters = z.strictObject({
  ...validateRasterShape,
  target_crs: z
    .union([z.literal('native'), crsSchema])
    .default('EPSG:4326')
    .describe("CRS of the COG: any CRS GDAL understands (e.g. 'EPSG:3857'), or 'native' to keep the source's"),
  compression: z.enum(COMPRESSIONS).optional().describe("Overrides the type's compression"),
  jpeg_quality: z.number().int().min(1).max(100).optional().describe('JPEG/WebP quality (default 85)'),
  overview_resampling: z.enum(RESAMPLINGS).optional().describe("Overrides the type's overview resampling"),
  reproject_resampling: z.enum(RESAMPLINGS).optional().describe("Overrides the type's reprojection resampling"),
  output_container: containerNameSchema.default('silver').describe('Container the COG is written to (default silver)'),
  output: z
    .enum(['cog', 'tiles'])
    .optional()
    .describe(
      "'cog' (default): one COG; 'tiles': COG tiles on the window grid (`<name>_tiles/r0000_c0000.tif`) and a STAC collection listing them",
    ),
  tiled_threshold_mb: z
    .number()
    .min(0)
    .optional()
    .describe(
      'Split the conversion into windows over the workers when the source holds at least this many MB uncompressed (default: the worker setting CM_RASTER_TILED_THRESHOLD_MB, 1024)',
    ),
  window_size: z
    .number()
    .int()
    .min(64)
    .max(16384)
    .multipleOf(64)
    .optional()
    .describe('Side of a window in pixels when tiled, a multiple of 64 (default: CM_RASTER_WINDOW_PX, 4096)'),
});

export type Params = z.output<typeof parameters>;

/** `dir/name.tif` -> `dir/name_cog.tif`; other names get `_cog.tif` appended. */
export function cogBlobName(blobName: string): string {
  return /\.tiff?$/i.test(blobName) ? blobName.replace(/\.tiff?$/i, '_cog.tif') : `${blobName}_cog.tif`;
}
