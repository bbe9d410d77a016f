import type gdal from 'gdal-async';
import { scanLayer, type FeatureRange } from './scan.ts';

/** Drivers whose FIDs are the feature's 0-based position: ranges of FIDs need no scan. */
const SEQUENTIAL_FIDS = ['ESRI Shapefile', 'FlatGeobuf'];

export interface ChunkPlan {
  featureCount: number;
  ranges: FeatureRange[];
  /** How the plan was made: `single` (one chunk), `fid_range` (from the FID bounds), `scan` (every feature read). */
  method: 'single' | 'fid_range' | 'scan';
}

/** Even FID ranges covering [lo, hi]: each chunk spans `ceil(span / n)` FIDs. */
function fidRanges(lo: number, hi: number, count: number, chunkSize: number, fidOffset: number): FeatureRange[] {
  const n = Math.max(1, Math.ceil(count / chunkSize));
  const span = Math.ceil((hi - lo + 1) / n);
  const ranges: FeatureRange[] = [];
  for (let i = 0; i < n; i++) {
    const fidMin = lo + i * span;
    if (fidMin > hi) break;
    const next = i === n - 1 ? undefined : fidMin + span;
    ranges.push({
      index: i,
      start: i * chunkSize,
      count: Math.min(chunkSize, count - i * chunkSize) || 1,
      fidMin,
      fidNext: next,
      preserveFid: true,
      fidOffset,
    });
  }
  return ranges;
}

/**
 * MIN and MAX of a GeoPackage layer's FID (the rowid), each from one end of the table's B-tree.
 * SQLite answers `SELECT MIN(x), MAX(x)` with a full scan (its shortcut needs a lone MIN or
 * MAX), which over /vsiaz/ reads the whole file: two ordered subqueries read a few pages.
 */
function gpkgFidBounds(dataset: gdal.Dataset, layer: gdal.Layer): [number, number] | null {
  const fid = `"${(layer.fidColumn || 'fid').replace(/"/g, '""')}"`;
  const table = `"${layer.name.replace(/"/g, '""')}"`;
  const f = dataset
    .executeSQL(
      `SELECT (SELECT ${fid} FROM ${table} ORDER BY ${fid} LIMIT 1) AS lo, (SELECT ${fid} FROM ${table} ORDER BY ${fid} DESC LIMIT 1) AS hi`,
      undefined,
      'SQLITE',
    )
    .features.first();
  const lo = f?.fields.get('lo') as number | null | undefined;
  const hi = f?.fields.get('hi') as number | null | undefined;
  return lo === null || lo === undefined || hi === null || hi === undefined ? null : [lo, hi];
}

/**
 * Plans the chunks of a layer without reading its features in JavaScript where the format
 * allows: the feature count from the driver (a GeoPackage keeps it; a shapefile's header has
 * it), then FID ranges from the FID bounds (GeoPackage: one `MIN/MAX` query; shapefile and
 * FlatGeobuf: FIDs are positions). A layer of at most one chunk is one chunk (for a
 * GeoPackage, the range of its FIDs). Other formats (GeoJSON, CSV, KML, GML larger than a
 * chunk) fall back to a scan of every feature's FID.
 *
 * The key of each row (`fid`) is its 1-based position in read order, except in GeoPackages,
 * whose FIDs are their keys already: ranges say how to compute it (`preserveFid`, `fidOffset`).
 */
export function planChunks(dataset: gdal.Dataset, layer: gdal.Layer, driver: string, chunkSize: number): ChunkPlan {
  layer.setAttributeFilter(null);
  const count = layer.features.count(true);
  if (driver === 'GPKG' && count > 0) {
    // A GeoPackage's rows keep their own FIDs, whether in one chunk or several.
    const bounds = gpkgFidBounds(dataset, layer);
    if (bounds)
      return {
        featureCount: count,
        ranges: fidRanges(bounds[0], bounds[1], count, chunkSize, 0),
        method: count <= chunkSize ? 'single' : 'fid_range',
      };
  }
  if (count <= chunkSize)
    return { featureCount: count, ranges: count > 0 ? [{ index: 0, start: 0, count }] : [], method: 'single' };
  if (SEQUENTIAL_FIDS.includes(driver))
    return { featureCount: count, ranges: fidRanges(0, count - 1, count, chunkSize, 1), method: 'fid_range' };
  const scan = scanLayer(layer, chunkSize, false);
  if (!scan.fidMonotonic) {
    // Ranges by position cannot be selected with a filter: one chunk reads the whole layer.
    return {
      featureCount: scan.featureCount,
      ranges: [{ index: 0, start: 0, count: scan.featureCount }],
      method: 'single',
    };
  }
  return { featureCount: scan.featureCount, ranges: scan.ranges, method: 'scan' };
}
