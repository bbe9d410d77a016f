import type { Pool } from 'pg';
import { quoteIdent } from '@coremachine/core-machine';
import { StacError } from './errors.ts';
import { vectorItemId } from './ids.ts';
import type { Bbox, Geometry, StacAsset, StacItem } from './types.ts';

export interface VectorItemOptions {
  schema: string;
  table: string;
  collection: string;
  /**
   * Root-relative href of the table's OGC API Features collection, when the server publishes
   * it (e.g. `/features/collections/roads`); the STAC API makes it absolute per request.
   */
  featuresHref?: string;
  /** Explicit item datetime (RFC 3339); wins over everything else. */
  datetime?: string;
  /** Datetime of the item already in the store, kept when the table has no time column. */
  previousDatetime?: string | null;
  /** Clock for the very first registration of a table without time information (tests). */
  now?: () => Date;
  properties?: Record<string, unknown>;
}

/** Columns whose min/max become the item's start/end datetime, first match wins. */
const TIME_COLUMNS = ['datetime', 'created_at', 'acquired_at', 'date', 'timestamp'];

const GEOJSON_TYPES: Record<string, string> = {
  POINT: 'Point',
  MULTIPOINT: 'MultiPoint',
  LINESTRING: 'LineString',
  MULTILINESTRING: 'MultiLineString',
  POLYGON: 'Polygon',
  MULTIPOLYGON: 'MultiPolygon',
  GEOMETRYCOLLECTION: 'GeometryCollection',
};

const round = (v: number) => Math.round(v * 1e9) / 1e9;

/**
 * Builds the STAC item of one PostGIS table: bbox reprojected to EPSG:4326 (from the table's
 * extent, densified before reprojection), row count, geometry types and SRID.
 *
 * Datetime, in order: `options.datetime`; the min/max of a time column (`datetime`,
 * `created_at`, ...) as start/end_datetime; the datetime of the item already catalogued
 * (`previousDatetime`); the time of this first registration. So re-running never moves it.
 *
 * @throws StacError TABLE_NOT_FOUND, NO_GEOMETRY_COLUMN, SRID_MISSING, or EMPTY_TABLE when the
 *   table has no row with a geometry (a STAC item without a footprint cannot be searched).
 */
export async function buildVectorItem(pool: Pool, options: VectorItemOptions): Promise<StacItem> {
  const { schema, table } = options;
  const qualified = `${quoteIdent(schema)}.${quoteIdent(table)}`;
  const exists = await pool.query(
    `SELECT 1 FROM information_schema.tables WHERE table_schema = $1 AND table_name = $2`,
    [schema, table],
  );
  if (!exists.rowCount)
    throw new StacError(
      'TABLE_NOT_FOUND',
      `Table ${schema}.${table} does not exist: load it first (ingest_vector) or check schema and table_name`,
    );
  const geomCols = await pool.query<{ column: string; srid: number }>(
    `SELECT f_geometry_column AS column, srid FROM geometry_columns WHERE f_table_schema = $1 AND f_table_name = $2 ORDER BY f_geometry_column LIMIT 1`,
    [schema, table],
  );
  const geom = geomCols.rows[0];
  if (!geom)
    throw new StacError(
      'NO_GEOMETRY_COLUMN',
      `Table ${schema}.${table} has no geometry column, so it has no footprint to catalogue`,
    );
  const g = quoteIdent(geom.column);
  const {
    rows: [stats],
  } = await pool.query<{
    rows: number;
    with_geom: number;
    srid: number | null;
    xmin: number | null;
    ymin: number | null;
    xmax: number | null;
    ymax: number | null;
    types: string[] | null;
  }>(
    `WITH t AS (SELECT count(*)::bigint AS rows, count(${g})::bigint AS with_geom, ST_Extent(${g}) AS ext,
                       (SELECT ST_SRID(${g}) FROM ${qualified} WHERE ${g} IS NOT NULL LIMIT 1) AS srid,
                       array_agg(DISTINCT GeometryType(${g})) FILTER (WHERE ${g} IS NOT NULL) AS types
                  FROM ${qualified}),
          env AS (SELECT t.*, CASE WHEN ext IS NULL OR srid IS NULL OR srid = 0 THEN NULL
                    ELSE ST_Transform(ST_Segmentize(ST_SetSRID(ext::geometry, srid),
                         GREATEST(ST_XMax(ext) - ST_XMin(ext), ST_YMax(ext) - ST_YMin(ext), 1e-9) / 32), 4326) END AS e FROM t)
     SELECT rows, with_geom, srid, ST_XMin(e) AS xmin, ST_YMin(e) AS ymin, ST_XMax(e) AS xmax, ST_YMax(e) AS ymax, types FROM env`,
  );
  if (!stats || Number(stats.with_geom) === 0) {
    throw new StacError(
      'EMPTY_TABLE',
      `Table ${schema}.${table} has ${stats?.rows ?? 0} rows and none with a geometry in ${geom.column}: nothing to catalogue`,
    );
  }
  const srid = stats.srid ?? geom.srid;
  if (!srid || stats.xmin === null)
    throw new StacError(
      'SRID_MISSING',
      `Table ${schema}.${table} has SRID 0 in ${geom.column}: set it (ST_SetSRID / UpdateGeometrySRID) so its bbox can be given in WGS84`,
    );
  const bbox = [stats.xmin, stats.ymin!, stats.xmax!, stats.ymax!].map(round) as Bbox;
  const [w, s, e, n] = bbox;
  const geometry: Geometry =
    w === e && s === n
      ? { type: 'Point', coordinates: [w, s] }
      : {
          type: 'Polygon',
          coordinates: [
            [
              [w, s],
              [e, s],
              [e, n],
              [w, n],
              [w, s],
            ],
          ],
        };

  const time = await timeRange(pool, schema, table, qualified);
  const when: Pick<StacItem['properties'], 'datetime' | 'start_datetime' | 'end_datetime'> = options.datetime
    ? { datetime: new Date(options.datetime).toISOString() }
    : time
      ? time.start === time.end
        ? { datetime: time.start }
        : { datetime: null, start_datetime: time.start, end_datetime: time.end }
      : { datetime: options.previousDatetime ?? (options.now ?? (() => new Date()))().toISOString() };

  const assets: Record<string, StacAsset> = {};
  if (options.featuresHref) {
    assets.features = {
      href: options.featuresHref,
      type: 'application/geo+json',
      title: `OGC API Features collection ${table}`,
      roles: ['data'],
    };
  }
  return {
    type: 'Feature',
    stac_version: '1.0.0',
    stac_extensions: [],
    id: vectorItemId(schema, table),
    collection: options.collection,
    geometry,
    bbox,
    properties: {
      ...when,
      'postgis:schema': schema,
      'postgis:table': table,
      'postgis:geometry_column': geom.column,
      'postgis:row_count': Number(stats.rows),
      'postgis:geometry_types': (stats.types ?? []).map((t) => GEOJSON_TYPES[t] ?? t).sort(),
      'postgis:srid': srid,
      ...options.properties,
    },
    links: [],
    assets,
  };
}

async function timeRange(
  pool: Pool,
  schema: string,
  table: string,
  qualified: string,
): Promise<{ start: string; end: string } | null> {
  const { rows } = await pool.query<{ column_name: string }>(
    `SELECT column_name FROM information_schema.columns
      WHERE table_schema = $1 AND table_name = $2 AND column_name = ANY($3::text[])
        AND data_type IN ('timestamp with time zone', 'timestamp without time zone', 'date')
      ORDER BY array_position($3::text[], column_name::text) LIMIT 1`,
    [schema, table, TIME_COLUMNS],
  );
  const col = rows[0]?.column_name;
  if (!col) return null;
  const c = quoteIdent(col);
  const {
    rows: [r],
  } = await pool.query<{ start: Date | null; end: Date | null }>(
    `SELECT min(${c})::timestamptz AS start, max(${c})::timestamptz AS end FROM ${qualified}`,
  );
  if (!r?.start || !r.end) return null;
  return { start: r.start.toISOString(), end: r.end.toISOString() };
}
