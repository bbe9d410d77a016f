import { COMPRESSIONS, RESAMPLINGS } from '@coremachine/geo/raster';
import { crsSchema } from '@coremachine/job-validate-raster';
import { blobPathSchema, blobPrefixSchema, containerNameSchema } from '@coremachine/storage';
import { z } from 'zod';

/** process_raster_collection parameters: the inputs, then process_raster's COG options where they apply. */
export const parameters = z
  .strictObject({
    container_name: containerNameSchema.default('bronze').describe('Container holding the rasters (default bronze)'),
    prefix: blobPrefixSchema
      .optional()
      .describe('Every GeoTIFF (.tif/.tiff) under this prefix is an input (give this or blob_names)'),
    blob_names: z
      .array(blobPathSchema)
      .min(1)
      .max(10_000)
      .optional()
      .describe('The input rasters, by path in the container (give this or prefix)'),
    input_crs: crsSchema.optional().describe('CRS to assume for inputs that have none'),
    target_crs: z
      .union([z.literal('native'), crsSchema])
      .default('EPSG:4326')
      .describe("CRS of the mosaic: any CRS GDAL understands, or 'native' to keep the first input's"),
    compression: z.enum(COMPRESSIONS).default('deflate').describe('COG compression (default deflate)'),
    jpeg_quality: z.number().int().min(1).max(100).optional().describe('JPEG/WebP quality (default 85)'),
    overview_resampling: z.enum(RESAMPLINGS).default('average').describe('Overview resampling (default average)'),
    reproject_resampling: z
      .enum(RESAMPLINGS)
      .default('bilinear')
      .describe('Resampling when inputs are reprojected (default bilinear)'),
    output_container: containerNameSchema
      .default('silver')
      .describe('Container the COG is written to (default silver)'),
    output_blob_name: blobPathSchema.describe(
      'Path of the mosaic COG in the output container, e.g. dem/mosaic_cog.tif',
    ),
    output: z
      .enum(['cog', 'tiles'])
      .optional()
      .describe(
        "'cog' (default): one COG at output_blob_name; 'tiles': COG tiles on the window grid (`<name>_tiles/r0000_c0000.tif`) and a STAC collection listing them",
      ),
    window_size: z
      .number()
      .int()
      .min(64)
      .max(16384)
      .multipleOf(64)
      .optional()
      .describe('Side of a window in pixels, a multiple of 64 (default: CM_RASTER_WINDOW_PX, 4096)'),
  })
  .refine((p) => (p.prefix === undefined) !== (p.blob_names === undefined), {
    message: 'give exactly one of prefix and blob_names',
    path: ['prefix'],
  });

export type Params = z.output<typeof parameters>;
