import type { RasterWarning } from './crs.ts';
import type { BandSample } from './sample.ts';

/** GDAL data types of 64 bits per sample, which the bit-depth policy rejects. */
export const SIXTY_FOUR_BIT_TYPES = ['Float64', 'Int64', 'UInt64', 'CFloat32', 'CFloat64', 'CInt32'] as const;

export interface BitDepthCheck {
  efficient: boolean;
  current_dtype: string;
  reason: string;
  recommended_dtype?: string;
  /** True when the data type breaks the 64-bit policy (fails the task in strict mode). */
  policy_violation: boolean;
  warnings: RasterWarning[];
}

/** The smallest integer GDAL type that holds [min, max]. */
export function smallestIntType(min: number, max: number): string {
  if (min >= 0 && max <= 255) return 'Byte';
  if (min >= -32768 && max <= 32767) return 'Int16';
  if (min >= 0 && max <= 65535) return 'UInt16';
  if (min >= -2147483648 && max <= 2147483647) return 'Int32';
  return 'Float64';
}

/**
 * The bit-depth policy: 64-bit samples are a CRITICAL violation; float data with fewer than
 * 256 distinct values (HIGH) or only integer values (MEDIUM) wastes space.
 */
export function checkBitDepth(dtype: string, sample: BandSample): BitDepthCheck {
  const base = { current_dtype: dtype, warnings: [] as RasterWarning[] };
  if ((SIXTY_FOUR_BIT_TYPES as readonly string[]).includes(dtype)) {
    const recommended = dtype.startsWith('C')
      ? 'CFloat32'
      : sample.allInteger
        ? smallestIntType(sample.min, sample.max)
        : 'Float32';
    const reason = `${dtype} uses 64 bits per sample; policy allows at most 32 (use ${recommended})`;
    return {
      ...base,
      efficient: false,
      reason,
      recommended_dtype: recommended,
      policy_violation: true,
      warnings: [{ severity: 'CRITICAL', code: 'BIT_DEPTH_POLICY_VIOLATION', message: reason }],
    };
  }
  const isFloat = dtype === 'Float32' || dtype === 'Float16';
  if (isFloat && sample.validCount > 0 && !sample.uniqueCapped && sample.unique.size < 256) {
    const reason = `${dtype} band holds only ${sample.unique.size} distinct values in the sample; Byte would do`;
    return {
      ...base,
      efficient: false,
      reason,
      recommended_dtype: 'Byte',
      policy_violation: false,
      warnings: [{ severity: 'HIGH', code: 'BIT_DEPTH_INEFFICIENT', message: reason }],
    };
  }
  if (isFloat && sample.validCount > 0 && sample.allInteger) {
    const recommended = smallestIntType(sample.min, sample.max);
    const reason = `${dtype} band holds only integers (${sample.min}..${sample.max}); ${recommended} would do`;
    return {
      ...base,
      efficient: false,
      reason,
      recommended_dtype: recommended,
      policy_violation: false,
      warnings: [{ severity: 'MEDIUM', code: 'BIT_DEPTH_INEFFICIENT', message: reason }],
    };
  }
  return { ...base, efficient: true, reason: `${dtype} suits the data`, policy_violation: false };
}
