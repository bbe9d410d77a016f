import type gdal from 'gdal-async';
import { readOrUnreadable } from './open.ts';

/** Exact value range of one band, over every pixel (nodata and non-finite values excluded). */
export interface BandRange {
  /** Valid pixels counted. */
  validCount: number;
  /** Smallest and largest valid value; null when the band has no valid pixel. */
  min: number | null;
  max: number | null;
  /** Every valid value is an integer. */
  allInteger: boolean;
  /** The band holds NaN or ±Infinity (that a non-float type cannot hold). */
  nonFinite: boolean;
}

/** Pixels read per window: bounds memory whatever the raster size (8 bytes each). */
const WINDOW_PIXELS = 1 << 21;

/**
 * The exact range of a band: every pixel is read, window by window (rows of the full width, at
 * most WINDOW_PIXELS at a time), never the whole band at once. Nothing is written back to the
 * file or to a PAM sidecar (GDAL's ComputeStatistics would save an `.aux.xml` beside a blob).
 */
export async function bandRange(band: gdal.RasterBand, label: string, path?: string): Promise<BandRange> {
  const { x: width, y: height } = band.size;
  const rows = Math.max(1, Math.floor(WINDOW_PIXELS / Math.max(1, width)));
  const nodata = band.noDataValue;
  let min = Infinity;
  let max = -Infinity;
  let validCount = 0;
  let allInteger = true;
  let nonFinite = false;
  for (let y = 0; y < height; y += rows) {
    const h = Math.min(rows, height - y);
    const data = (await readOrUnreadable(
      label,
      () => band.pixels.readAsync(0, y, width, h, undefined, { data_type: 'Float64' }),
      path,
    )) as Float64Array;
    for (let i = 0; i < data.length; i++) {
      const v = data[i]!;
      if (nodata !== null && (v === nodata || (Number.isNaN(nodata) && Number.isNaN(v)))) continue;
      if (!Number.isFinite(v)) {
        nonFinite = true;
        continue;
      }
      validCount++;
      if (v < min) min = v;
      if (v > max) max = v;
      if (allInteger && !Number.isInteger(v)) allInteger = false;
    }
  }
  return validCount
    ? { validCount, min, max, allInteger, nonFinite }
    : { validCount: 0, min: null, max: null, allInteger: true, nonFinite };
}

/** The range over several bands (for a nodata value all of them can share). */
export function unionRange(ranges: readonly BandRange[]): BandRange {
  const valid = ranges.filter((r) => r.validCount > 0);
  return {
    validCount: ranges.reduce((a, r) => a + r.validCount, 0),
    min: valid.length ? Math.min(...valid.map((r) => r.min!)) : null,
    max: valid.length ? Math.max(...valid.map((r) => r.max!)) : null,
    allInteger: ranges.every((r) => r.allInteger),
    nonFinite: ranges.some((r) => r.nonFinite),
  };
}
