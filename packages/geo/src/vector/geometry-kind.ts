import gdal from 'gdal-async';

export type GeometryFamily = 'point' | 'line' | 'polygon' | 'collection';

/** The target geometry column: its PostGIS type and how each geometry is cast to fit it. */
export interface GeometryPlan {
  /** PostGIS subtype without Z/M, e.g. `MultiPolygon`, `Point`, `Geometry`. */
  type: string;
  /** True when Z is kept (the column is `...Z` or `...ZM`). */
  z: boolean;
  /** True when M (measures) is kept (the column is `...M` or `...ZM`). Absent: false. */
  m?: boolean | undefined;
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

/** True when an OGR geometry type code carries M (ISO 2000/3000 range). */
export function typeHasM(code: number): boolean {
  const u = code >>> 0;
  // The 2.5D types (`wkbLineString25D` = 0x80000002) never carry M.
  if ((u & Z_BIT) !== 0) return false;
  return u % 4000 >= 2000;
}

/** Coordinate dimensions of a plan, as GDAL's `-dim` and OGC names them: `XY`, `XYZ`, `XYM`, `XYZM`. */
export type Dimensions = 'XY' | 'XYZ' | 'XYM' | 'XYZM';

export function dimensionsOf(plan: { z: boolean; m?: boolean | undefined }): Dimensions {
  return `XY${plan.z ? 'Z' : ''}${plan.m ? 'M' : ''}` as Dimensions;
}

/** PostGIS `ST_Zmflag` of a plan's geometries: 0 = 2D, 1 = M, 2 = Z, 3 = ZM. */
export function zmFlagOf(plan: { z: boolean; m?: boolean | undefined }): number {
  return (plan.z ? 2 : 0) + (plan.m ? 1 : 0);
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
export function planGeometry(flatTypes: Iterable<number>, z: boolean, m = false): GeometryPlan {
  const families = new Set<GeometryFamily>();
  let anyMultiPoint = false;
  for (const t of flatTypes) {
    const f = familyOf(t);
    if (f) families.add(f);
    if (t === 4) anyMultiPoint = true;
  }
  if (families.size !== 1) return { type: 'Geometry', z, m, family: null, multi: false };
  const family = [...families][0]!;
  if (family === 'point' && !anyMultiPoint) return { type: 'Point', z, m, family, multi: false };
  if (family === 'collection') return { type: 'GeometryCollection', z, m, family, multi: false };
  return { type: MULTI_OF[family], z, m, family, multi: true };
}

/** The PostGIS subtype with its dimensions: `MultiLineStringZM`, `PointM`, `MultiPolygon`. */
export function pgSubtype(plan: GeometryPlan): string {
  return `${plan.type}${plan.z ? 'Z' : ''}${plan.m ? 'M' : ''}`;
}

/** `geometry(MultiPolygonZ, 4326)`, `geometry(MultiLineStringZM, 4326)` for a plan. */
export function pgGeometryType(plan: GeometryPlan): string {
  return `geometry(${pgSubtype(plan)}, 4326)`;
}

/** SQL forcing `expr` to the plan's dimensions (a missing Z or M becomes 0). */
export function forceDimensionsSql(expr: string, plan: GeometryPlan): string {
  if (plan.z && plan.m) return `ST_Force4D(${expr})`;
  if (plan.z) return `ST_Force3DZ(${expr})`;
  if (plan.m) return `ST_Force3DM(${expr})`;
  return `ST_Force2D(${expr})`;
}

/**
 * SQL expression turning `expr` (a repaired, reprojected geometry in EPSG:4326) into the
 * column's type: curves linearised, the family's parts kept after MakeValid, Multi* promotion,
 * Z and M forced or dropped.
 */
export function castGeometrySql(expr: string, plan: GeometryPlan): string {
  let g = `CASE WHEN ST_HasArc(${expr}) THEN ST_CurveToLine(${expr}) ELSE ${expr} END`;
  const extract = plan.family === 'point' ? 1 : plan.family === 'line' ? 2 : plan.family === 'polygon' ? 3 : 0;
  if (extract) g = `ST_CollectionExtract(${g}, ${extract})`;
  if (plan.multi) g = `ST_Multi(${g})`;
  return forceDimensionsSql(g, plan);
}
