import type gdal from 'gdal-async';
import { readOrUnreadable } from './open.ts';

/** Valid (non-nodata, finite) values of a window of one band, with the window's shape. */
export interface BandSample {
  width: number;
  height: number;
  /** Row-major window values; NaN where the pixel is nodata or not finite. */
  values: Float64Array;
  validCount: number;
  min: number;
  max: number;
  /** Distinct valid values, counted up to `maxUnique + 1` then abandoned. */
  unique: Set<number>;
  uniqueCapped: boolean;
  allInteger: boolean;
}

/**
 * Reads a centred window of at most `size` x `size` pixels of a band (never the whole
 * raster): enough to judge value range, distinct values and smoothness.
 */
export async function sampleBand(
  band: gdal.RasterBand,
  label: string,
  path?: string,
  size = 1000,
  maxUnique = 1024,
): Promise<BandSample> {
  const width = Math.min(size, band.size.x);
  const height = Math.min(size, band.size.y);
  const x = Math.floor((band.size.x - width) / 2);
  const y = Math.floor((band.size.y - height) / 2);
  const raw = await readOrUnreadable(
    label,
    () => band.pixels.readAsync(x, y, width, height, undefined, { data_type: 'Float64' }),
    path,
  );
  const nodata = band.noDataValue;
  const values = new Float64Array(raw.length);
  const unique = new Set<number>();
  let uniqueCapped = false;
  let validCount = 0;
  let min = Infinity;
  let max = -Infinity;
  let allInteger = true;
  for (let i = 0; i < raw.length; i++) {
    const v = Number(raw[i]);
    if (!Number.isFinite(v) || (nodata !== null && (v === nodata || (Number.isNaN(nodata) && Number.isNaN(v))))) {
      values[i] = NaN;
      continue;
    }
    values[i] = v;
    validCount++;
    if (v < min) min = v;
    if (v > max) max = v;
    if (allInteger && !Number.isInteger(v)) allInteger = false;
    if (!uniqueCapped) {
      unique.add(v);
      if (unique.size > maxUnique) uniqueCapped = true;
    }
  }
  return { width, height, values, validCount, min, max, unique, uniqueCapped, allInteger };
}

/**
 * Smoothness of a surface: (mean |dx| + mean |dy|) / (2 x range). Near 0 for terrain,
 * larger for noise or class maps. Pairs touching nodata are skipped.
 */
export function smoothness(s: BandSample): number {
  const range = s.max - s.min;
  if (!(range > 0)) return 0;
  let sumX = 0;
  let nX = 0;
  let sumY = 0;
  let nY = 0;
  for (let row = 0; row < s.height; row++) {
    for (let col = 0; col < s.width; col++) {
      const v = s.values[row * s.width + col]!;
      if (Number.isNaN(v)) continue;
      if (col + 1 < s.width) {
        const r = s.values[row * s.width + col + 1]!;
        if (!Number.isNaN(r)) {
          sumX += Math.abs(r - v);
          nX++;
        }
      }
      if (row + 1 < s.height) {
        const b = s.values[(row + 1) * s.width + col]!;
        if (!Number.isNaN(b)) {
          sumY += Math.abs(b - v);
          nY++;
        }
      }
    }
  }
  const meanX = nX ? sumX / nX : 0;
  const meanY = nY ? sumY / nY : 0;
  return (meanX + meanY) / (2 * range);
}
