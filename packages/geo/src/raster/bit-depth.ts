import type { RasterWarning } from './crs.ts';
import type { BandRange } from './range.ts';
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

/** Value range of the integer GDAL types. */
const INTEGER_TYPES: ReadonlyArray<readonly [string, number, number]> = [
  ['Byte', 0, 255],
  ['Int16', -32768, 32767],
  ['UInt16', 0, 65535],
  ['Int32', -2147483648, 2147483647],
  ['UInt32', 0, 4294967295],
];

/** The smallest integer GDAL type that holds [min, max], or null when none of 32 bits does. */
export function smallestIntType(min: number, max: number): string | null {
  for (const [type, lo, hi] of INTEGER_TYPES) if (min >= lo && max <= hi) return type;
  return null;
}

/**
 * True when every valid value of the data fits `type` unchanged: integer types need integer
 * values (no fraction, no NaN/Inf) within their range, Float32 needs magnitudes up to 3.4e38.
 */
export function typeHolds(type: string, range: BandRange): boolean {
  if (range.validCount === 0 || range.min === null || range.max === null) return true;
  const int = INTEGER_TYPES.find(([t]) => t === type);
  if (int) return range.allInteger && !range.nonFinite && range.min >= int[1] && range.max <= int[2];
  if (type === 'Float32') return Math.max(Math.abs(range.min), Math.abs(range.max)) <= 3.4028234663852886e38;
  return true;
}

/**
 * The bit-depth policy: 64-bit samples are a CRITICAL violation; float data holding only
 * integers wastes space. Advice names only a type that holds every value of the data: the exact
 * range of the band (sign, fraction, extremes over every pixel), not a sample of it. Float data
 * with fractions is left as it is, however few its distinct values.
 */
export function checkBitDepth(dtype: string, sample: BandSample, range: BandRange): BitDepthCheck {
  const base = { current_dtype: dtype, warnings: [] as RasterWarning[] };
  const integers = range.validCount > 0 && range.allInteger && !range.nonFinite;
  const smallest = integers ? smallestIntType(range.min!, range.max!) : null;
  const span = range.validCount > 0 ? `${range.min}..${range.max}` : 'no valid values';
  if ((SIXTY_FOUR_BIT_TYPES as readonly string[]).includes(dtype)) {
    const recommended = dtype.startsWith('C') ? 'CFloat32' : (smallest ?? 'Float32');
    const fits = recommended === 'CFloat32' || typeHolds(recommended, range);
    const reason = fits
      ? `${dtype} uses 64 bits per sample; policy allows at most 32 (${recommended} holds every value, ${span})`
      : `${dtype} uses 64 bits per sample; policy allows at most 32, but no 32-bit type holds the values (${span})`;
    return {
      ...base,
      efficient: false,
      reason,
      ...(fits ? { recommended_dtype: recommended } : {}),
      policy_violation: true,
      warnings: [{ severity: 'CRITICAL', code: 'BIT_DEPTH_POLICY_VIOLATION', message: reason }],
    };
  }
  const isFloat = dtype === 'Float32' || dtype === 'Float16';
  if (isFloat && smallest && typeHolds(smallest, range)) {
    const few = !sample.uniqueCapped && sample.unique.size < 256;
    const reason = `${dtype} band holds only integers (${span}${few ? `, ${sample.unique.size} distinct values in the sample` : ''}); ${smallest} holds every value`;
    return {
      ...base,
      efficient: false,
      reason,
      recommended_dtype: smallest,
      policy_violation: false,
      warnings: [{ severity: smallest === 'Byte' ? 'HIGH' : 'MEDIUM', code: 'BIT_DEPTH_INEFFICIENT', message: reason }],
    };
  }
  return { ...base, efficient: true, reason: `${dtype} suits the data (${span})`, policy_violation: false };
}
