import type gdal from 'gdal-async';
import { copyFormatterFor, type ColumnPlan } from './field-types.ts';
import type { FeatureRange } from './scan.ts';

/** Why a source feature was not written. */
export type SkipReason =
  'null_geometry' | 'empty_geometry' | 'reprojection_failed' | 'coordinates_out_of_range' | 'empty_after_repair';

export interface RangeStats {
  read: number;
  skipped: Partial<Record<SkipReason, number>>;
}

export interface ReadRangeOptions {
  columns: readonly ColumnPlan[];
  /** Reprojection to WGS 84 lon/lat, or null when the source is in it already. */
  transform: gdal.CoordinateTransformation | null;
  /** Refuse coordinates outside -180..180 / -90..90 (CSV lat/lon columns). */
  checkLonLatRange?: boolean;
  /** Rows per yielded text block. */
  batchRows?: number;
  signal?: AbortSignal;
}

/**
 * Positions the layer on a range: by an FID attribute filter when the scan found FIDs
 * increasing (the driver then seeks, e.g. SQLite's primary key), else by skipping features.
 */
function seek(layer: gdal.Layer, range: FeatureRange): gdal.Feature | null {
  if (range.fidMin !== undefined) {
    const fid = layer.fidColumn ? `"${layer.fidColumn.replace(/"/g, '""')}"` : 'FID';
    const upper = range.fidNext !== undefined ? ` AND ${fid} < ${range.fidNext}` : '';
    layer.setAttributeFilter(`${fid} >= ${range.fidMin}${upper}`);
    return layer.features.first();
  }
  layer.setAttributeFilter(null);
  let f = layer.features.first();
  for (let i = 0; i < range.start && f; i++) f = layer.features.next();
  return f;
}

function bump(stats: RangeStats, reason: SkipReason): void {
  stats.skipped[reason] = (stats.skipped[reason] ?? 0) + 1;
}

/**
 * Streams one range of a layer as PostgreSQL COPY text rows
 * `fid <TAB> attributes... <TAB> hex WKB`, in blocks of `batchRows` rows, holding one
 * feature at a time. `fid` is the 1-based position in the source's read order, so a chunk
 * read twice yields the same keys. Features without a usable geometry are counted in
 * `stats.skipped` by reason, not written.
 */
export async function* copyRowsForRange(
  layer: gdal.Layer,
  range: FeatureRange,
  options: ReadRangeOptions,
  stats: RangeStats,
): AsyncGenerator<string> {
  const formatters = options.columns.map((c) => copyFormatterFor(c.ogrType));
  const fieldIndex = options.columns.map((c) => layer.fields.indexOf(c.source));
  const batchRows = options.batchRows ?? 2000;
  let next = seek(layer, range);
  let rows: string[] = [];
  for (let pos = 0; pos < range.count && next; pos++, next = pos < range.count ? layer.features.next() : null) {
    const feature = next;
    stats.read++;
    const geom = feature.getGeometry();
    if (!geom) {
      bump(stats, 'null_geometry');
      continue;
    }
    if (geom.isEmpty()) {
      bump(stats, 'empty_geometry');
      continue;
    }
    if (options.transform) {
      try {
        geom.transform(options.transform);
      } catch {
        bump(stats, 'reprojection_failed');
        continue;
      }
    }
    if (options.checkLonLatRange) {
      const e = geom.getEnvelope();
      if (e.minX < -180 || e.maxX > 180 || e.minY < -90 || e.maxY > 90) {
        bump(stats, 'coordinates_out_of_range');
        continue;
      }
    }
    const values = feature.fields.toArray();
    let line = String(range.start + pos + 1);
    for (let i = 0; i < formatters.length; i++) line += '\t' + formatters[i]!(values[fieldIndex[i]!]);
    line += '\t' + geom.toWKB('LSB', 'ISO').toString('hex') + '\n';
    rows.push(line);
    if (rows.length >= batchRows) {
      yield rows.join('');
      rows = [];
      if (options.signal?.aborted) throw options.signal.reason ?? new Error('aborted');
    }
  }
  if (rows.length) yield rows.join('');
}
