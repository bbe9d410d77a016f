import { permanentError, registerErrorCodes } from '@coremachine/core-machine';
import type gdal from 'gdal-async';
import { flatType, typeHasM, typeHasZ } from './geometry-kind.ts';

/** A range of source features, by position in the layer's read order. */
export interface FeatureRange {
  index: number;
  /** Position of the first feature (0-based). */
  start: number;
  count: number;
  /**
   * FID bounds when the layer's FIDs increase in read order: the chunk is then read with an
   * attribute filter `FID >= fidMin [AND FID < fidNext]` instead of skipping `start` features.
   */
  fidMin?: number | undefined;
  fidNext?: number | undefined;
  /**
   * How the row key is made: the source FID plus `fidOffset` when `preserveFid`, else the
   * row's 1-based number within the chunk plus `fidOffset` (the chunk's start position).
   * Absent: position (`start` + row number).
   */
  preserveFid?: boolean | undefined;
  fidOffset?: number | undefined;
}

export interface LayerScan {
  featureCount: number;
  /** Flat OGR geometry types seen (only filled when `readGeometries`). */
  geometryTypes: number[];
  anyZ: boolean;
  anyM: boolean;
  /** True when FIDs strictly increase in read order (FID ranges are then usable). */
  fidMonotonic: boolean;
  ranges: FeatureRange[];
}

registerErrorCodes({
  GEOMETRY_UNSUPPORTED: {
    meaning: 'the layer holds geometries the loader cannot read (curves in a layer of mixed types)',
    permanent: true,
    httpStatus: 422,
  },
});

/**
 * The feature's geometry. A curve gdal-async cannot represent (CircularString, CompoundCurve,
 * CurvePolygon, MultiCurve, MultiSurface in a layer of no declared type: "Tried to create
 * unsupported geometry type") fails the scan permanently, naming the file, the feature and the
 * way out, instead of a transient error retried to the end.
 */
function readGeometry(f: gdal.Feature, label: string): gdal.Geometry | null {
  try {
    return f.getGeometry();
  } catch (err) {
    if (!/unsupported geometry type/i.test((err as Error).message)) throw err;
    throw permanentError(
      'GEOMETRY_UNSUPPORTED',
      `${label}: feature ${f.fid} has a curved geometry (arcs) in a layer of mixed geometry types, which cannot be loaded as it is; linearise the curves first (ogr2ogr -nlt CONVERT_TO_LINEAR)`,
      { file: label, fid: f.fid },
    );
  }
}

/**
 * Reads a layer once, in GDAL's read order, to count features, record the FID at each chunk
 * boundary and (when the layer does not declare one geometry type) collect the geometry types.
 * Only one feature is held at a time.
 */
export function scanLayer(
  layer: gdal.Layer,
  chunkSize: number,
  readGeometries: boolean,
  label = layer.name,
): LayerScan {
  const starts: number[] = [];
  const types = new Set<number>();
  let anyZ = false;
  let anyM = false;
  let count = 0;
  let lastFid = -Infinity;
  let monotonic = true;
  layer.setAttributeFilter(null);
  for (let f = layer.features.first(); f; f = layer.features.next()) {
    const fid = f.fid;
    if (!(fid > lastFid)) monotonic = false;
    lastFid = fid;
    if (count % chunkSize === 0) starts.push(fid);
    if (readGeometries) {
      const g = readGeometry(f, label);
      if (g) {
        types.add(flatType(g.wkbType));
        if (!anyZ && typeHasZ(g.wkbType)) anyZ = true;
        if (!anyM && typeHasM(g.wkbType)) anyM = true;
      }
    }
    count++;
  }
  const ranges: FeatureRange[] = [];
  for (let i = 0, start = 0; start < count; i++, start += chunkSize) {
    ranges.push({
      index: i,
      start,
      count: Math.min(chunkSize, count - start),
      ...(monotonic ? { fidMin: starts[i], fidNext: starts[i + 1] } : {}),
    });
  }
  return { featureCount: count, geometryTypes: [...types], anyZ, anyM, fidMonotonic: monotonic, ranges };
}

/**
 * Default chunk size, for throughput: each chunk costs a task, a table and a transaction, so
 * chunks are large (up to ~250,000 points or ~100,000 lines/polygons, less for wide attribute
 * tables), yet a layer of more than 20,000 features is cut in an even number of chunks of
 * equal size so that `parallel` load tasks (one worker's slots) finish together. At least 10,000.
 */
export function autoChunkSize(featureCount: number, columnCount: number, pointsOnly: boolean, parallel = 2): number {
  let target = pointsOnly ? 250_000 : 100_000;
  if (columnCount > 50) target *= 0.3;
  else if (columnCount > 20) target *= 0.5;
  else if (columnCount > 10) target *= 0.7;
  if (featureCount <= 20_000) return Math.max(1000, featureCount);
  const chunks = Math.ceil(Math.max(featureCount / target, parallel) / parallel) * parallel;
  return Math.max(10_000, Math.ceil(featureCount / chunks));
}
