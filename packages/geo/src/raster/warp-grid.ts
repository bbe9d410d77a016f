import gdal from 'gdal-async';
import { footprintWgs84, outlineRing } from '../stac/footprint.ts';
import { isRotated } from './bounds.ts';

/**
 * Where GDAL's choice of a warp's output grid goes wrong on real files, and what is done instead.
 *
 * - A raster whose rows run bottom-up (positive pixel height, as many NetCDF and HDF exports
 *   have) or whose columns run east to west is not "in the target CRS already": like a rotated
 *   one, it is warped, so every output is north-up.
 * - Into a geographic CRS, a footprint that crosses the antimeridian (a UTM 60 scene reaching
 *   past 180°E, Fiji, the Aleutians) makes GDAL's suggested output span the whole globe at a
 *   resolution that keeps a few hundred pixels (a 400 × 200 km, 1 km scene became 452 × 2
 *   pixels). Its output is planned with the longitudes unwrapped past 180° (`lon_wrap`, what
 *   `gdalwarp --config CENTER_LONG 180` does): the scene's own extent at the scene's
 *   resolution, e.g. 178.89°…182.72°E. The GeoTIFF keeps its CRS (EPSG:4326), and its STAC
 *   footprint is cut at the antimeridian with west > east.
 * - A raster georeferenced only by ground control points (satellite scenes as delivered) has no
 *   geotransform: its CRS is the GCPs', it is always warped (GDAL fits its transformer to the
 *   GCPs), and where a grid is needed before warping (bounds, STAC), it is the grid that warp
 *   gives in the GCPs' own CRS.
 */

/** True when pixels run north-up and west to east with no rotation: the grid can be kept as it is. */
export function isNorthUp(gt: readonly number[]): boolean {
  return !isRotated(gt) && (gt[1] ?? 1) > 0 && (gt[5] ?? -1) < 0;
}

/**
 * True when a raster of geotransform `gt` and CRS `srs`, warped into a geographic `target`,
 * crosses the antimeridian (and does not simply circle a pole).
 */
export function crossesAntimeridian(
  gt: readonly number[],
  width: number,
  height: number,
  srs: gdal.SpatialReference,
  target: gdal.SpatialReference,
): boolean {
  if (!target.isGeographic()) return false;
  try {
    const { bbox } = footprintWgs84(outlineRing([...gt], width, height), srs);
    return bbox[0] > bbox[2];
  } catch {
    return false; // PROJ cannot place it: GDAL's own choice (and its error) stand
  }
}

/** `target` with its longitudes in [0°, 360°) (`+lon_wrap=180`), for planning a grid across the antimeridian. */
function unwrapped(target: gdal.SpatialReference): gdal.SpatialReference {
  return gdal.SpatialReference.fromProj4(`${target.toProj4()} +lon_wrap=180`);
}

export interface SuggestedGrid {
  geoTransform: [number, number, number, number, number, number];
  width: number;
  height: number;
  /** The grid's longitudes run past 180° (its footprint crosses the antimeridian). */
  acrossAntimeridian: boolean;
  /**
   * GDAL's resolution was replaced by the data's own (see {@link suggestedGrid}): gdalwarp must
   * be given this grid (`-te`/`-ts`), its own choice differs.
   */
  resolutionKept: boolean;
}

/** GDAL's resolution may be this many times coarser than the data's before it is replaced. */
const MAX_RESOLUTION_LOSS = 4;

/**
 * The finest ground step of one source pixel, in degrees (a geographic target's unit), sampled
 * over the raster: the median over 5 × 5 pixels of the shorter of its two sides, each measured
 * as a distance on the ground (longitude scaled by the cosine of the latitude). Null when PROJ
 * cannot place the samples.
 */
function finestPixelDegrees(
  ds: gdal.Dataset,
  srs: gdal.SpatialReference,
  target: gdal.SpatialReference,
): number | null {
  const gt = ds.geoTransform;
  if (!gt) return null;
  const [x0, a, b, y0, d, e] = gt as [number, number, number, number, number, number];
  const ct = new gdal.CoordinateTransformation(srs, target);
  const swapIn = srs.EPSGTreatsAsLatLong() || srs.EPSGTreatsAsNorthingEasting();
  const swapOut = target.EPSGTreatsAsLatLong();
  const lonLat = (col: number, row: number): [number, number] | null => {
    const x = x0 + col * a + row * b;
    const y = y0 + col * d + row * e;
    try {
      const p = swapIn ? ct.transformPoint(y, x) : ct.transformPoint(x, y);
      const out: [number, number] = swapOut ? [p.y, p.x] : [p.x, p.y];
      return Number.isFinite(out[0]) && Number.isFinite(out[1]) ? out : null;
    } catch {
      return null;
    }
  };
  const ground = (p: [number, number], q: [number, number]) => {
    let dLon = Math.abs(q[0] - p[0]);
    if (dLon > 180) dLon = 360 - dLon;
    const cos = Math.cos((((p[1] + q[1]) / 2) * Math.PI) / 180);
    return Math.hypot(dLon * cos, q[1] - p[1]);
  };
  const steps: number[] = [];
  const { x: w, y: h } = ds.rasterSize;
  for (let i = 0; i < 5; i++) {
    for (let j = 0; j < 5; j++) {
      const col = Math.min(w - 1, ((i + 0.5) * w) / 5);
      const row = Math.min(h - 1, ((j + 0.5) * h) / 5);
      const p = lonLat(col, row);
      const q = lonLat(col + 1, row);
      const r = lonLat(col, row + 1);
      if (p && q && r) steps.push(Math.min(ground(p, q), ground(p, r)));
    }
  }
  if (!steps.length) return null;
  steps.sort((x, y) => x - y);
  return steps[Math.floor(steps.length / 2)]! || null;
}

/**
 * The grid `gdalwarp -t_srs <target>` gives `ds` (`GDALSuggestedWarpOutput2`), planned across
 * the antimeridian when the footprint crosses it (see the module comment). Into a geographic
 * CRS, when GDAL's resolution is more than 4 times coarser than the data's finest ground step
 * (a polar scene: GDAL keeps the pixel count of the footprint's diagonal over 360° of longitude,
 * a 200 × 200 px Antarctic scene became 283 × 10 px), the grid keeps GDAL's extent at the data's
 * resolution instead.
 */
export function suggestedGrid(
  ds: gdal.Dataset,
  srs: gdal.SpatialReference,
  target: gdal.SpatialReference,
): SuggestedGrid {
  const gt = ds.geoTransform ?? [0, 1, 0, 0, 0, -1];
  const across = crossesAntimeridian(gt, ds.rasterSize.x, ds.rasterSize.y, srs, target);
  const out = gdal.suggestedWarpOutput({ src: ds, s_srs: srs, t_srs: across ? unwrapped(target) : target });
  const suggested: SuggestedGrid = {
    geoTransform: out.geoTransform as SuggestedGrid['geoTransform'],
    width: out.rasterSize.x,
    height: out.rasterSize.y,
    acrossAntimeridian: across,
    resolutionKept: false,
  };
  if (!target.isGeographic()) return suggested;
  const finest = finestPixelDegrees(ds, srs, target);
  const [x0, rx, , y0, , ry] = suggested.geoTransform;
  if (!finest || Math.max(rx, Math.abs(ry)) <= MAX_RESOLUTION_LOSS * finest) return suggested;
  const width = Math.max(1, Math.round((rx * suggested.width) / finest));
  const height = Math.max(1, Math.round((Math.abs(ry) * suggested.height) / finest));
  return {
    geoTransform: [x0, (rx * suggested.width) / width, 0, y0, 0, (ry * suggested.height) / height],
    width,
    height,
    acrossAntimeridian: across,
    resolutionKept: true,
  };
}

/** gdalwarp arguments that make it write exactly `grid` (`-te` and `-ts`). */
export function gridWarpArgs(grid: Pick<SuggestedGrid, 'geoTransform' | 'width' | 'height'>): string[] {
  const [x0, rx, , y0, , ry] = grid.geoTransform;
  const x1 = x0 + rx * grid.width;
  const y1 = y0 + ry * grid.height;
  return [
    '-te',
    ...[Math.min(x0, x1), Math.min(y0, y1), Math.max(x0, x1), Math.max(y0, y1)].map(String),
    '-ts',
    String(grid.width),
    String(grid.height),
  ];
}

/** gdalwarp arguments that make its own grid choice the one {@link suggestedGrid} plans. */
export function antimeridianWarpArgs(acrossAntimeridian: boolean): string[] {
  return acrossAntimeridian ? ['--config', 'CENTER_LONG', '180'] : [];
}

/** The CRS of a raster georeferenced by ground control points and no geotransform, else null. */
export function gcpCrs(ds: gdal.Dataset): gdal.SpatialReference | null {
  if (ds.geoTransform || ds.getGCPs().length === 0) return null;
  const wkt = ds.getGCPProjection();
  if (!wkt) return null;
  try {
    return gdal.SpatialReference.fromWKT(wkt);
  } catch {
    return null;
  }
}

/**
 * The geotransform a raster has, or for one georeferenced by GCPs the north-up grid GDAL warps
 * it onto in `srs` (null when it has neither).
 */
export function effectiveGeoTransform(
  ds: gdal.Dataset,
  srs: gdal.SpatialReference | null,
): [number, number, number, number, number, number] | null {
  if (ds.geoTransform) return ds.geoTransform as [number, number, number, number, number, number];
  if (!srs || ds.getGCPs().length === 0) return null;
  const out = gdal.suggestedWarpOutput({ src: ds, s_srs: srs, t_srs: srs });
  // The grid's extent at the raster's own pixel count: bounds without resampling the scene.
  const [x0, rx, , y0, , ry] = out.geoTransform;
  const w = out.rasterSize.x;
  const h = out.rasterSize.y;
  return [x0!, (rx! * w) / ds.rasterSize.x, 0, y0!, 0, (ry! * h) / ds.rasterSize.y];
}

/** True when a raster in `srs` must be warped to land on a north-up grid in `target`. */
export function mustWarp(ds: gdal.Dataset, srs: gdal.SpatialReference, target: gdal.SpatialReference): boolean {
  if (!target.isSame(srs)) return true;
  if (!ds.geoTransform) return ds.getGCPs().length > 0;
  return !isNorthUp(ds.geoTransform);
}
