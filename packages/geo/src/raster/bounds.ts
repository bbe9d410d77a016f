import gdal from 'gdal-async';
import { classifyGdalError, gdalTaskError } from '../gdal/errors.ts';
import { crsShortName, epsgCode, isEngineeringCrs, notGeoreferencedError, type RasterWarning } from './crs.ts';
import { rasterError } from './errors.ts';

/** [minx, miny, maxx, maxy]. */
export type Bounds = [number, number, number, number];

/** True when the geotransform has rotation or shear terms. */
export function isRotated(gt: readonly number[]): boolean {
  return (gt[2] ?? 0) !== 0 || (gt[4] ?? 0) !== 0;
}

/** Bounds of a raster from its four corners, so rotated geotransforms are covered. */
export function rasterBounds(gt: readonly number[], width: number, height: number): Bounds {
  const [x0 = 0, a = 1, b = 0, y0 = 0, d = 0, e = -1] = gt;
  const corners: Array<[number, number]> = [
    [0, 0],
    [width, 0],
    [0, height],
    [width, height],
  ].map(([p, l]) => [x0 + p! * a + l! * b, y0 + p! * d + l! * e]);
  const xs = corners.map((c) => c[0]);
  const ys = corners.map((c) => c[1]);
  return [Math.min(...xs), Math.min(...ys), Math.max(...xs), Math.max(...ys)];
}

/** WGS 84 in longitude/latitude order whatever the axis conventions. */
export function wgs84(): gdal.SpatialReference {
  return gdal.SpatialReference.fromProj4('+proj=longlat +datum=WGS84 +no_defs');
}

/**
 * Bounds transformed to WGS 84 lon/lat, densified along each edge (21 points) so curved
 * edges in the target are covered.
 * @param label the file, for errors: a local CRS is CRS_NOT_GEOREFERENCED, a CRS PROJ cannot
 *   transform (or whose bounds all fall outside its domain) CRS_TRANSFORM_FAILED, both permanent.
 */
export function boundsTo4326(bounds: Bounds, srs: gdal.SpatialReference, label = 'the raster'): Bounds {
  const target = wgs84();
  if (srs.isSame(target)) return bounds;
  if (isEngineeringCrs(srs)) throw notGeoreferencedError(label, srs);
  let tr: gdal.CoordinateTransformation;
  try {
    tr = new gdal.CoordinateTransformation(traditional(srs), target);
  } catch (err) {
    throw transformError(err, label, srs);
  }
  const [minx, miny, maxx, maxy] = bounds;
  const xs: number[] = [];
  const ys: number[] = [];
  const steps = 20;
  for (let i = 0; i <= steps; i++) {
    const fx = minx + ((maxx - minx) * i) / steps;
    const fy = miny + ((maxy - miny) * i) / steps;
    for (const [x, y] of [
      [fx, miny],
      [fx, maxy],
      [minx, fy],
      [maxx, fy],
    ] as const) {
      const p = tr.transformPoint(x, y);
      if (Number.isFinite(p.x) && Number.isFinite(p.y)) {
        xs.push(p.x);
        ys.push(p.y);
      }
    }
  }
  if (!xs.length) {
    throw rasterError(
      'CRS_TRANSFORM_FAILED',
      `${label}: no corner of its bounds [${bounds.join(', ')}] can be transformed from ${crsShortName(srs)} to WGS 84; the CRS is probably wrong (pass input_crs)`,
      { file: label, crs: crsShortName(srs), bounds },
    );
  }
  return [Math.min(...xs), Math.min(...ys), Math.max(...xs), Math.max(...ys)];
}

function transformError(err: unknown, label: string, srs: gdal.SpatialReference) {
  const c = classifyGdalError(err);
  if (!c.permanent) return gdalTaskError(err, { file: label });
  return rasterError(
    'CRS_TRANSFORM_FAILED',
    `${label}: PROJ cannot transform its CRS ${crsShortName(srs)} to WGS 84 (${c.message.slice(0, 200)}); pass input_crs if the file's CRS is wrong`,
    { file: label, crs: crsShortName(srs), gdal: c.message },
  );
}

/**
 * The SRS with x = easting/longitude, y = northing/latitude, as geotransforms store them. A
 * CRS parsed from "EPSG:4326" is in authority (lat, lon) order and this binding cannot set
 * the axis mapping; a PROJ string is always in (x, y) order. Good enough for bounds.
 */
function traditional(srs: gdal.SpatialReference): gdal.SpatialReference {
  try {
    return gdal.SpatialReference.fromProj4(srs.toProj4());
  } catch {
    return srs;
  }
}

/**
 * Bounds sanity warnings: geographic coordinates outside ±180/±90 and UTM eastings outside
 * [-1e6, 2e6] usually mean a wrong CRS. Two layouts of real global grids are not that: longitudes
 * 0…360 (weather and climate models) are reported as such (LOW), and edges up to one pixel
 * beyond ±180/±90 (a grid whose cell centres sit on the limits) are within tolerance.
 * @param pixel the pixel size [x, y] in CRS units (default 0: no tolerance)
 */
export function boundsWarnings(bounds: Bounds, crsLabel: string, pixel: [number, number] = [0, 0]): RasterWarning[] {
  const code = epsgCode(crsLabel);
  const [minx, miny, maxx, maxy] = bounds;
  const warnings: RasterWarning[] = [];
  const [tx, ty] = pixel.map((p) => Math.abs(p) * 1.000001);
  const latitudesOk = miny >= -90 - ty! && maxy <= 90 + ty!;
  if (code === 4326 && latitudesOk && minx >= -tx! && maxx > 180 + tx! && maxx <= 360 + tx!) {
    warnings.push({
      severity: 'LOW',
      code: 'LONGITUDES_0_360',
      message: `longitudes run ${minx}..${maxx} (the 0..360 convention of global models); the COG keeps them, STAC footprints are given in -180..180`,
    });
  } else if (code === 4326 && (minx < -180 - tx! || maxx > 180 + tx! || !latitudesOk)) {
    warnings.push({
      severity: 'HIGH',
      code: 'BOUNDS_OUT_OF_RANGE',
      message: `bounds [${bounds.join(', ')}] exceed longitude ±180 / latitude ±90 for EPSG:4326; the CRS is probably wrong`,
    });
  }
  if (
    code !== null &&
    ((code >= 32601 && code <= 32660) || (code >= 32701 && code <= 32760)) &&
    (minx < -1e6 || maxx > 2e6)
  ) {
    warnings.push({
      severity: 'HIGH',
      code: 'BOUNDS_OUT_OF_RANGE',
      message: `eastings ${minx}..${maxx} are outside -1,000,000..2,000,000 for UTM ${crsLabel}; the CRS is probably wrong`,
    });
  }
  return warnings;
}
