import { z } from 'zod';
import { COMPRESSIONS, RASTER_TYPES, RESAMPLINGS } from './cog-settings.ts';

const bounds = z.tuple([z.number(), z.number(), z.number(), z.number()]);

/** A band's nodata value as JSON can hold it: a number, 'NaN', 'Infinity', '-Infinity' or null. */
export const nodataSchema = z.union([z.number(), z.enum(['NaN', 'Infinity', '-Infinity'])]).nullable();
export type NodataJson = z.infer<typeof nodataSchema>;

/** Maps GDAL's nodata value to {@link nodataSchema} (JSON has no NaN or infinities). */
export function nodataToJson(value: number | null): NodataJson {
  if (value === null) return null;
  if (Number.isNaN(value)) return 'NaN';
  if (value === Infinity) return 'Infinity';
  if (value === -Infinity) return '-Infinity';
  return value;
}

export const rasterWarningSchema = z.object({
  severity: z.enum(['LOW', 'MEDIUM', 'HIGH', 'CRITICAL']),
  code: z.string(),
  message: z.string(),
});

export const cogSettingsSchema = z.object({
  compression: z.enum(COMPRESSIONS),
  jpeg_quality: z.number().int().min(1).max(100).nullable(),
  overview_resampling: z.enum(RESAMPLINGS),
  reproject_resampling: z.enum(RESAMPLINGS),
});

/** The result of validating one raster (validate_raster's task output). */
export const validationResultSchema = z.object({
  valid: z.literal(true),
  source_blob: z.string(),
  container_name: z.string(),
  source_crs: z.string(),
  crs_source: z.enum(['file_metadata', 'user_confirmed', 'user_override_required']),
  bounds,
  bounds_4326: bounds,
  rotated: z.boolean(),
  shape: z.tuple([z.number().int(), z.number().int()]),
  band_count: z.number().int(),
  dtype: z.string(),
  size_mb: z.number(),
  nodata: nodataSchema,
  driver: z.string(),
  raster_type: z.object({
    detected_type: z.enum([...RASTER_TYPES, 'unknown']),
    confidence: z.enum(['LOW', 'MEDIUM', 'HIGH', 'VERY_HIGH']),
    evidence: z.array(z.string()),
    type_source: z.enum(['auto_detected', 'user_confirmed', 'user_specified']),
    optimal_cog_settings: cogSettingsSchema,
  }),
  bit_depth_check: z.object({
    efficient: z.boolean(),
    current_dtype: z.string(),
    reason: z.string(),
    recommended_dtype: z.string().optional(),
  }),
  warnings: z.array(rasterWarningSchema),
});

export type ValidationResult = z.infer<typeof validationResultSchema>;
