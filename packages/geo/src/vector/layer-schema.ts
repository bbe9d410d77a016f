import { randomBytes } from 'node:crypto';
import gdal from 'gdal-async';
import { pgTypeFor, type ColumnPlan } from './field-types.ts';
import { launderColumnNames } from './identifiers.ts';

/** Columns the loader adds itself; source fields with these names are renamed. */
export const FID_COLUMN = 'fid';
export const GEOM_COLUMN = 'geom';

/**
 * Indexes of the layer's Boolean fields (integers of GDAL's OFSTBoolean subtype, which gdal-async
 * does not expose): read from the CSVT file GDAL's CSV driver writes for the layer's schema, in
 * memory, no feature copied. Empty when that cannot be done (the layer is then read as integers).
 */
export function booleanFields(layer: gdal.Layer): Set<number> {
  const out = `/vsimem/cm-fields-${randomBytes(6).toString('hex')}`;
  const found = new Set<number>();
  try {
    gdal
      .vectorTranslate(`${out}.csv`, layer.ds, ['-f', 'CSV', '-lco', 'CREATE_CSVT=YES', '-limit', '0', layer.name])
      .close();
    const types = gdal.vsimem.release(`${out}.csvt`).toString('utf8').trim().split(',');
    if (types.length === layer.fields.count())
      types.forEach((t, i) => {
        if (t.trim() === 'Integer(Boolean)') found.add(i);
      });
  } catch {
    /* a layer GDAL cannot copy by name (an SQL result): no Boolean subtype known */
  } finally {
    for (const f of [`${out}.csv`, `${out}.csvt`])
      try {
        gdal.vsimem.release(f);
      } catch {
        /* not written */
      }
  }
  return found;
}

/** The attribute columns of a layer: laundered names and PostgreSQL types (Booleans as `boolean`). */
export function columnsOf(layer: gdal.Layer): ColumnPlan[] {
  const defs = layer.fields.map((f) => ({ source: f.name, ogrType: f.type }));
  const names = launderColumnNames(
    defs.map((d) => d.source),
    [FID_COLUMN, GEOM_COLUMN],
  );
  const booleans = defs.some((d) => d.ogrType === gdal.OFTInteger) ? booleanFields(layer) : new Set<number>();
  return defs.map((d, i) => ({
    source: d.source,
    name: names[i]!,
    ogrType: d.ogrType,
    pgType: d.ogrType === gdal.OFTInteger && booleans.has(i) ? 'boolean' : pgTypeFor(d.ogrType),
  }));
}

/** Describes a layer's CRS for results: `EPSG:32633`, or a PROJ string when it has no code. */
export function describeSrs(srs: gdal.SpatialReference | null): string | null {
  if (!srs) return null;
  const clone = srs.clone();
  try {
    clone.autoIdentifyEPSG();
  } catch {
    /* not identifiable: fall back below */
  }
  const name = clone.getAuthorityName(null);
  const code = clone.getAuthorityCode(null);
  if (name && code) return `${name}:${code}`;
  try {
    return clone.toProj4();
  } catch {
    return clone.toWKT();
  }
}

/** True when the CRS is WGS 84 longitude/latitude already (no reprojection needed). */
export function isWgs84(srs: gdal.SpatialReference): boolean {
  const wgs84 = gdal.SpatialReference.fromProj4('+proj=longlat +datum=WGS84 +no_defs');
  return srs.isSame(wgs84) || describeSrs(srs) === 'EPSG:4326' || describeSrs(srs) === 'OGC:CRS84';
}

/**
 * A transformation from `srs` to WGS 84 in longitude/latitude order (the order PostGIS and
 * GeoJSON use; EPSG:4326 itself is latitude first in GDAL 3). Null when none is needed.
 */
export function toWgs84(srs: gdal.SpatialReference | null): gdal.CoordinateTransformation | null {
  if (!srs || isWgs84(srs)) return null;
  return new gdal.CoordinateTransformation(srs, gdal.SpatialReference.fromProj4('+proj=longlat +datum=WGS84 +no_defs'));
}
