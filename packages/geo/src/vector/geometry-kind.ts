import gdal from 'gdal-async';

export type GeometryFamily = 'point' | 'line' | 'polygon' | 'collection';

/** The target geometry column: its PostGIS type and how each geometry is cast to fit it. */
export interface GeometryPlan {
  /** PostGIS subtype without Z, e.g. `MultiPolygon`, `Point`, `Geometry`. */
  type: string;
  /** True when Z is kept (the column is `...Z`). */
  z: boolean;
  /** Family when all geometries share one; null when mixed (column type `Geometry`). */
  family: GeometryFamily | null;
  /** True when single geometries are promoted to Multi*. */
  multi: boolean;
}

const Z_BIT = gdal.wkb25DBit >>> 0;

/** True when an OGR geometry type code carries Z (2.5D bit or ISO 1000/3000 range). */
export function typeHasZ(code: number): boolean {
  const u = code >>> 0;
  if ((u & Z_BIT) !== 0) return true;
  const iso = u % 4000;
  return (iso >= 1000 && iso < 2000) || iso >= 3000;
}

/** The OGR geometry type without Z/M (`wkbPolygon25D` -> `wkbPolygon`). */
export function flatType(code: number): number {
  return ((code >>> 0) & ~Z_BIT) % 1000;
}

/** Family of a flat OGR type; null for unknown/none. */
export function familyOf(flat: number): GeometryFamily | null {
  switch (flat) {
    case 1:
    case 4:
      return 'point';
    case 2:
    case 5:
    case 8:
    case 9:
    case 11:
    case 13:
      return 'line';
    case 3:
    case 6:
    case 10:
    case 12:
    case 14:
    case 15:
    case 16:
    case 17:
      return 'polygon';
    case 7:
      return 'collection';
    default:
      return null;
  }
}

const MULTI_OF: Record<GeometryFamily, string> = {
  point: 'MultiPoint',
  line: 'MultiLineString',
  polygon: 'MultiPolygon',
  collection: 'GeometryCollection',
};

/**
 * Chooses the geometry column for a set of source geometry types (flat OGR codes seen, and
 * whether any had Z). One family gives its Multi* type: polygons and lines are always
 * promoted (a Polygon layer may hold MultiPolygons, and a table typed from the first feature
 * breaks on the next); points stay `Point` unless a MultiPoint is present. Mixed families
 * give `Geometry`.
 */
export function planGeometry(flatTypes: Iterable<number>, z: boolean): GeometryPlan {
  const families = new Set<GeometryFamily>();
  let anyMultiPoint = false;
  for (const t of flatTypes) {
    const f = familyOf(t);
    if (f) families.add(f);
    if (t === 4) anyMultiPoint = true;
  }
  if (families.size !== 1) return { type: 'Geometry', z, family: null, multi: false };
  const family = [...families][0]!;
  if (family === 'point' && !anyMultiPoint) return { type: 'Point', z, family, multi: false };
  if (family === 'collection') return { type: 'GeometryCollection', z, family, multi: false };
  return { type: MULTI_OF[family], z, family, multi: true };
}

/** `geometry(MultiPolygonZ, 4326)` for a plan. */
export function pgGeometryType(plan: GeometryPlan): string {
  return `geometry(${plan.type}${plan.z ? 'Z' : ''}, 4326)`;
}

/**
 * SQL expression turning `expr` (a repaired, reprojected geometry in EPSG:4326) into the
 * column's type: curves linearised, the family's parts kept after MakeValid, Multi* promotion,
 * Z forced or dropped.
 */
export function castGeometrySql(expr: string, plan: GeometryPlan): string {
  let g = `CASE WHEN ST_HasArc(${expr}) THEN ST_CurveToLine(${expr}) ELSE ${expr} END`;
  const extract = plan.family === 'point' ? 1 : plan.family === 'line' ? 2 : plan.family === 'polygon' ? 3 : 0;
  if (extract) g = `ST_CollectionExtract(${g}, ${extract})`;
  if (plan.multi) g = `ST_Multi(${g})`;
  g = plan.z ? `ST_Force3D(${g})` : `ST_Force2D(${g})`;
  return g;
}
