import gdal from 'gdal-async';
import type { Bbox, Geometry } from './types.ts';

/** Points per raster edge when tracing the footprint: curved edges after reprojection stay close. */
const EDGE_POINTS = 21;

const round = (v: number) => Math.round(v * 1e9) / 1e9;

let crs84: gdal.SpatialReference | undefined;

/** WGS84 with longitude first, whatever the GDAL axis-order default. */
export function wgs84(): gdal.SpatialReference {
  crs84 ??= gdal.SpatialReference.fromUserInput('OGC:CRS84');
  return crs84;
}

// Creating a transformation costs ~20 ms (PROJ looks the operation up in its database): keep
// one per source CRS. Catalogues usually hold a handful of CRSs; the cap bounds the odd one.
const transforms = new Map<string, gdal.CoordinateTransformation>();
function toWgs84(srs: gdal.SpatialReference): gdal.CoordinateTransformation {
  const key = srs.toWKT();
  let ct = transforms.get(key);
  if (!ct) {
    if (transforms.size >= 64) transforms.clear();
    ct = new gdal.CoordinateTransformation(srs, wgs84());
    transforms.set(key, ct);
  }
  return ct;
}

const inverses = new Map<string, gdal.CoordinateTransformation>();

/** True when the pole at `lat` (±90) lies inside `ring` (in `srs`, x first). */
function enclosesPole(ring: Array<[number, number]>, srs: gdal.SpatialReference, swap: boolean, lat: number): boolean {
  const key = srs.toWKT();
  let ct = inverses.get(key);
  if (!ct) {
    if (inverses.size >= 64) inverses.clear();
    ct = new gdal.CoordinateTransformation(wgs84(), srs);
    inverses.set(key, ct);
  }
  let p: { x: number; y: number };
  try {
    p = ct.transformPoint(0, lat);
  } catch {
    return false; // the pole is outside the CRS's domain
  }
  const [px, py] = swap ? [p.y, p.x] : [p.x, p.y];
  if (!Number.isFinite(px) || !Number.isFinite(py)) return false;
  let inside = false;
  for (let i = 0, j = ring.length - 1; i < ring.length; j = i++) {
    const [xi, yi] = ring[i]!;
    const [xj, yj] = ring[j]!;
    if (yi > py !== yj > py && px < ((xj - xi) * (py - yi)) / (yj - yi) + xi) inside = !inside;
  }
  return inside;
}

/** How points of a CRS go to WGS84: the transformation, and whether x/y must be swapped first. */
export interface Wgs84Transform {
  ct: gdal.CoordinateTransformation;
  swap: boolean;
}

/**
 * The transformation of `srs` to WGS84 (cached per CRS). gdal-async applies the authority axis
 * order (lat/lon for EPSG:4326, northing/easting for some grids), while geotransform
 * coordinates are always x/easting first: `swap` says so. A caller holding the same CRS for
 * many rasters keeps this and passes it to {@link footprintWgs84}.
 * @throws what PROJ throws when it cannot transform the CRS.
 */
export function wgs84Transform(srs: gdal.SpatialReference): Wgs84Transform {
  return { ct: toWgs84(srs), swap: srs.EPSGTreatsAsLatLong() || srs.EPSGTreatsAsNorthingEasting() };
}

/** The raster's outline in its own CRS, densified, as a closed ring of [x, y] (pixel → geo through the full geotransform, rotation included). */
export function outlineRing(geoTransform: number[], width: number, height: number): Array<[number, number]> {
  const [x0, a, b, y0, d, e] = geoTransform as [number, number, number, number, number, number];
  const px = (col: number, row: number): [number, number] => [x0 + col * a + row * b, y0 + col * d + row * e];
  const ring: Array<[number, number]> = [];
  const n = EDGE_POINTS - 1;
  for (let i = 0; i < n; i++) ring.push(px((width * i) / n, 0));
  for (let i = 0; i < n; i++) ring.push(px(width, (height * i) / n));
  for (let i = 0; i < n; i++) ring.push(px(width - (width * i) / n, height));
  for (let i = 0; i < n; i++) ring.push(px(0, height - (height * i) / n));
  ring.push(ring[0]!);
  return ring;
}

export interface Footprint {
  geometry: Geometry;
  /** STAC bbox; when the footprint crosses the antimeridian, west > east (RFC 7946 §5.2). */
  bbox: Bbox;
}

function polygonOf(ring: Array<[number, number]>): gdal.Polygon {
  const poly = new gdal.Polygon();
  const lr = new gdal.LinearRing();
  for (const [x, y] of ring) lr.points.add(x, y);
  poly.rings.add(lr);
  return poly;
}

function box(minX: number, minY: number, maxX: number, maxY: number): gdal.Polygon {
  return polygonOf([
    [minX, minY],
    [maxX, minY],
    [maxX, maxY],
    [minX, maxY],
    [minX, minY],
  ]);
}

function ringsOf(geom: gdal.Geometry, shift: number): number[][][][] {
  const json = JSON.parse(geom.toJSON()) as { type: string; coordinates: number[][][] | number[][][][] };
  const polys =
    json.type === 'Polygon'
      ? [json.coordinates as number[][][]]
      : json.type === 'MultiPolygon'
        ? (json.coordinates as number[][][][])
        : [];
  return polys.map((p) => p.map((r) => r.map(([x, y]) => [round(x! + shift), round(y!)])));
}

/**
 * Footprint in WGS84 of a ring given in `srs`. Longitudes are unwrapped along the ring so that a
 * raster straddling ±180° stays one shape; such a shape is then cut at the antimeridian into a
 * MultiPolygon, and its bbox has west > east as the STAC and GeoJSON specs require.
 */
export function footprintWgs84(
  ring: Array<[number, number]>,
  srs: gdal.SpatialReference,
  transform: Wgs84Transform = wgs84Transform(srs),
): Footprint {
  const { ct, swap } = transform;
  const pts = ring.map(([x, y]) => {
    const p = swap ? ct.transformPoint(y, x) : ct.transformPoint(x, y);
    return [p.x, p.y] as [number, number];
  });
  for (let i = 1; i < pts.length; i++) {
    const prev = pts[i - 1]![0];
    let lon = pts[i]![0];
    while (lon - prev > 180) lon -= 360;
    while (lon - prev < -180) lon += 360;
    pts[i]![0] = lon;
  }
  let minX = Math.min(...pts.map((p) => p[0]));
  const shift =
    minX < -180 ? 360 * Math.ceil((-180 - minX) / 360) : minX >= 180 ? -360 * Math.floor((minX + 180) / 360) : 0;
  for (const p of pts) p[0] += shift;
  minX += shift;
  const maxX = Math.max(...pts.map((p) => p[0]));
  const minY = Math.max(-90, Math.min(...pts.map((p) => p[1])));
  const maxY = Math.min(90, Math.max(...pts.map((p) => p[1])));

  if (maxX - minX >= 360) {
    // The ring goes round a pole (a polar stereographic scene, a global grid): the footprint
    // reaches the pole it encloses, which lies inside the ring but on none of its points.
    const south = enclosesPole(ring, srs, swap, -90) ? -90 : minY;
    const north = enclosesPole(ring, srs, swap, 90) ? 90 : maxY;
    return {
      geometry: { type: 'Polygon', coordinates: ringsOf(box(-180, south, 180, north), 0)[0]! },
      bbox: [-180, south, 180, north].map(round) as Bbox,
    };
  }
  if (maxX <= 180) {
    // The ring as it is: no geometry operation needed, so no round trip through OGR.
    return {
      geometry: { type: 'Polygon', coordinates: [pts.map(([x, y]) => [round(x), round(y)])] },
      bbox: [minX, minY, maxX, maxY].map(round) as Bbox,
    };
  }
  const shape = polygonOf(pts);
  const west = shape.intersection(box(minX - 1, minY - 1, 180, maxY + 1));
  const east = shape.intersection(box(180, minY - 1, maxX + 1, maxY + 1));
  const coordinates = [...ringsOf(west, 0), ...ringsOf(east, -360)];
  return { geometry: { type: 'MultiPolygon', coordinates }, bbox: [minX, minY, maxX - 360, maxY].map(round) as Bbox };
}
