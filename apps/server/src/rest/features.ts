/**
 * OGC API - Features, Part 1 (core, GeoJSON, OpenAPI 3.0) with queryables (Part 3) and vector
 * tiles, over the published tables of the vector schemas (CM_GEO_SCHEMAS; what a published
 * table is, and its stored row count and extent, come from geo/vector). Collection ids are table
 * names, qualified `schema.table` when a name is taken in an earlier schema. Mounted under
 * `/features`; links are absolute, built from the Host header.
 *
 * - items: `limit`, `offset`, `after` (keyset paging: the features whose key is above it; the
 *   `next` links use it, so that a deep page costs what the first one does), `bbox`
 *   (antimeridian-aware, shared with /stac/search), `datetime` (collections with a time column
 *   only); any other query parameter is a 400.
 * - numberMatched: the stored row count without filters (counted up to MATCH_COUNT_LIMIT for a
 *   table without stored facts); with filters, given when the page holds the whole result (a
 *   first page with no `next`), omitted otherwise (as the standard allows): no count runs.
 * - The catalog (tables, columns) is cached; each statement reading a table checks the table's
 *   version (geo/vector tableVersionSql) and the catalog is read again when it changed (a table
 *   replaced by ingest_vector, altered, renamed, its facts rewritten).
 * - items/{id}: compared with the primary key in its own type (index lookup).
 * - tiles: `tiles/WebMercatorQuad/{z}/{x}/{y}` Mapbox Vector Tiles made by PostGIS (ST_AsMVT),
 *   `tiles/WebMercatorQuad` their TileJSON.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { createHash } from 'node:crypto';
import type { Pool, QueryConfig } from 'pg';
import { quoteIdent, quoteLiteral } from '@coremachine/core-machine';
import { parseDatetime } from '@coremachine/geo/stac';
import {
  listPublishedTables,
  tableColumns,
  tableVersionSql,
  withCollectionIds,
  type PublishedTable,
  type TableColumn,
} from '@coremachine/geo/vector';
import { bboxSql, parseBbox, type Bbox } from './bbox.ts';
import { baseUrl, HttpError, sendJson as send } from './http.ts';

const CONFORMANCE = [
  'http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/core',
  'http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/geojson',
  'http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/oas30',
  'http://www.opengis.net/spec/ogcapi-features-3/1.0/conf/queryables',
  'http://www.opengis.net/spec/ogcapi-tiles-1/1.0/conf/core',
  'http://www.opengis.net/spec/ogcapi-tiles-1/1.0/conf/mvt',
];
const CRS84 = 'http://www.opengis.net/def/crs/OGC/1.3/CRS84';
const IDENT = /^[a-z_][a-z0-9_]*$/;
const QUERYABLES_REL = 'http://www.opengis.net/def/rel/ogc/1.0/queryables';
/** With filters, numberMatched is counted up to this many rows, and omitted above. */
export const MATCH_COUNT_LIMIT = 10_000;
const MAX_LIMIT = 10_000;
const MAX_ZOOM = 24;
const TEMPORAL = new Set(['date', 'timestamp without time zone', 'timestamp with time zone']);

interface Collection extends PublishedTable {
  id: string;
}

const tableSql = (c: PublishedTable) => `${quoteIdent(c.schema)}.${quoteIdent(c.table)}`;
const geomSql = (c: PublishedTable, alias = 't') => `${alias}.${quoteIdent(c.geometry)}`;
const in4326 = (c: PublishedTable, alias = 't') =>
  c.srid === 4326 ? geomSql(c, alias) : `ST_Transform(${geomSql(c, alias)}, 4326)`;

/** JSON Schema of a column's values (queryables, describedby). */
function jsonSchemaOf(type: string): Record<string, unknown> {
  if (type.endsWith('[]')) return { type: 'array', items: jsonSchemaOf(type.slice(0, -2)) };
  if (type === 'smallint' || type === 'integer') return { type: 'integer' };
  if (type === 'bigint') return { type: 'integer', format: 'int64' };
  if (type === 'real' || type === 'double precision' || type.startsWith('numeric')) return { type: 'number' };
  if (type === 'boolean') return { type: 'boolean' };
  if (type === 'date') return { type: 'string', format: 'date' };
  if (type.startsWith('timestamp')) return { type: 'string', format: 'date-time' };
  if (type.startsWith('time')) return { type: 'string', format: 'time' };
  if (type === 'json' || type === 'jsonb') return { type: 'object' };
  return { type: 'string' };
}

const GEOMETRY_FORMAT: Record<string, string> = {
  POINT: 'geometry-point',
  MULTIPOINT: 'geometry-multipoint',
  LINESTRING: 'geometry-linestring',
  MULTILINESTRING: 'geometry-multilinestring',
  POLYGON: 'geometry-polygon',
  MULTIPOLYGON: 'geometry-multipolygon',
  GEOMETRYCOLLECTION: 'geometry-geometrycollection',
};

function queryablesDoc(base: string, c: Collection, columns: TableColumn[], path: string) {
  const properties: Record<string, unknown> = {};
  properties[c.geometry] = {
    title: c.geometry,
    format: GEOMETRY_FORMAT[c.geometryType.replace(/M$/, '')] ?? 'geometry-any',
    'x-ogc-role': 'primary-geometry',
  };
  for (const col of columns) properties[col.name] = { title: col.name, ...jsonSchemaOf(col.type) };
  return {
    $schema: 'https://json-schema.org/draft/2019-09/schema',
    $id: `${base}/collections/${c.id}/${path}`,
    type: 'object',
    title: c.id,
    properties,
    additionalProperties: false,
  };
}

const timeColumn = (columns: TableColumn[]) => columns.find((c) => TEMPORAL.has(c.type)) ?? null;

function collectionDoc(base: string, c: Collection, extent: number[] | null, columns?: TableColumn[]) {
  const self = `${base}/collections/${c.id}`;
  const time = columns ? timeColumn(columns) : null;
  return {
    id: c.id,
    title: c.id,
    description: `Table ${c.schema}.${c.table}`,
    itemType: 'feature',
    crs: [CRS84],
    storageCrs: CRS84,
    ...(extent ? { extent: { spatial: { bbox: [extent], crs: CRS84 } } } : {}),
    ...(columns
      ? {
          properties: columns.map((col) => ({ name: col.name, type: col.type, ...jsonSchemaOf(col.type) })),
          ...(time ? { time_column: time.name } : {}),
        }
      : {}),
    links: [
      { href: self, rel: 'self', type: 'application/json', title: 'This collection' },
      { href: `${self}/items`, rel: 'items', type: 'application/geo+json', title: 'Features' },
      { href: `${self}/queryables`, rel: QUERYABLES_REL, type: 'application/schema+json', title: 'Queryables' },
      { href: `${self}/schema`, rel: 'describedby', type: 'application/schema+json', title: 'Schema of the features' },
      {
        href: `${self}/tiles/WebMercatorQuad`,
        rel: 'http://www.opengis.net/def/rel/ogc/1.0/tilesets-vector',
        type: 'application/json',
        title: 'Vector tiles (TileJSON)',
      },
    ],
  };
}

/**
 * The extent in CRS84: the one stored at ingest, else the planner's estimate, else (small
 * tables, or never analyzed) computed.
 */
async function extentOf(pool: Pool, c: Collection): Promise<number[] | null> {
  if (c.facts) return c.facts.bbox;
  const box = (e: string, from = '') =>
    `select st_xmin(e) a, st_ymin(e) b, st_xmax(e) c, st_ymax(e) d from (select ${e} as e ${from}) s`;
  const srid = c.srid || 4326;
  const estimated = await pool
    .query(
      box(
        `st_transform(st_setsrid(st_estimatedextent($1, $2, $3)::geometry, ${srid}), 4326)::box2d`,
        'where st_estimatedextent($1, $2, $3) is not null',
      ),
      [c.schema, c.table, c.geometry],
    )
    .catch(() => ({ rows: [] as Record<string, number | null>[] }));
  const r = estimated.rows[0] as Record<string, number | null> | undefined;
  if (r && r.a !== null && c.estimatedRows > MATCH_COUNT_LIMIT) return [r.a!, r.b!, r.c!, r.d!];
  const { rows } = await pool.query(box(`st_extent(${in4326(c)})::box2d`, `from ${tableSql(c)} t`));
  const x = rows[0] as Record<string, number | null> | undefined;
  return x && x.a !== null ? [x.a!, x.b!, x.c!, x.d!] : null;
}

function intParam(name: string, v: string | null, min: number, fallback: number): number {
  if (v === null) return fallback;
  const n = Number(v);
  if (!/^\d+$/.test(v.trim()) || !Number.isInteger(n) || n < min)
    throw new HttpError(400, 'InvalidParameterValue', `${name} must be an integer >= ${min}, got ${JSON.stringify(v)}`);
  return n;
}

const ITEMS_PARAMS = ['limit', 'offset', 'after', 'bbox', 'datetime', 'f'];

function datetimeRange(datetime: string): { start: string | null; end: string | null } {
  try {
    return parseDatetime(datetime);
  } catch (err) {
    throw new HttpError(400, 'InvalidParameterValue', (err as Error).message);
  }
}

function checkParams(url: URL, allowed: readonly string[]): void {
  for (const key of new Set(url.searchParams.keys())) {
    if (!allowed.includes(key))
      throw new HttpError(
        400,
        'InvalidParameter',
        `Unknown query parameter ${JSON.stringify(key)}; this resource accepts: ${allowed.join(', ') || 'none'}`,
      );
    if (url.searchParams.getAll(key).length > 1)
      throw new HttpError(400, 'InvalidParameterValue', `Query parameter ${JSON.stringify(key)} is given twice`);
  }
  const f = url.searchParams.get('f');
  if (f !== null && !['json', 'geojson'].includes(f))
    throw new HttpError(400, 'InvalidParameterValue', `f must be json or geojson, got ${JSON.stringify(f)}`);
}

/** json_build_object takes at most 100 arguments: 50 properties. */
const BUILD_OBJECT_MAX = 50;

/**
 * A GeoJSON Feature as JSON text, built by PostgreSQL from row `t` (properties in table order):
 * concatenated text (the GeoJSON of the geometry is not parsed again as JSON), as
 * json_build_object would write it.
 */
function featureText(c: Collection, columns: TableColumn[]): string {
  const cols = columns.map((col) => `t.${quoteIdent(col.name)}`);
  const props = !columns.length
    ? `'{}'`
    : columns.length <= BUILD_OBJECT_MAX
      ? `json_build_object(${columns.map((col, i) => `${quoteLiteral(col.name)}, ${cols[i]}`).join(', ')})::text`
      : `(select row_to_json(p) from (select ${cols.join(', ')}) p)::text`;
  return `'{"type":"Feature","id":' || to_json(t.${quoteIdent(c.key)})::text || ',"geometry":'
    || coalesce(st_asgeojson(${in4326(c)}, 9), 'null') || ',"properties":' || ${props} || '}'`;
}

/** Where a feature's text (featureText) starts in a page's comma-joined texts. */
const FEATURE_START = ',{"type":"Feature","id":';

/** The one-time filter of a statement reading `c`: no row once the table is not the cached one. */
const versionFilter = (c: Collection, param: string) =>
  `${tableVersionSql(`to_regclass(${quoteLiteral(tableSql(c))})`)} = ${param}`;

/** The statement names of the query texts seen (a page's text is the same for each request of its kind). */
const statementNames = new Map<string, string>();

/** A named (prepared once per connection) statement for a query text. */
const named = (text: string, values: unknown[]): QueryConfig => {
  let name = statementNames.get(text);
  if (name === undefined) {
    if (statementNames.size >= 1000) statementNames.clear();
    name = `cmf_${createHash('sha1').update(text).digest('hex').slice(0, 20)}`;
    statementNames.set(text, name);
  }
  return { name, text, values };
};

function openapi(base: string) {
  const p = (name: string, schema: object, description: string, inPath = false, extra: object = {}) => ({
    name,
    in: inPath ? 'path' : 'query',
    required: inPath,
    schema,
    description,
    ...extra,
  });
  const json = (description: string, type = 'application/json') => ({
    description,
    content: { [type]: { schema: { type: 'object' } } },
  });
  const collectionId = p('collectionId', { type: 'string' }, 'Collection id (table name, or schema.table)', true);
  return {
    openapi: '3.0.3',
    info: {
      title: 'CoreMachine OGC API - Features',
      version: '1.1.0',
      description: 'Vector tables loaded by ingest_vector',
    },
    servers: [{ url: base }],
    paths: {
      '/': { get: { operationId: 'landing', summary: 'Landing page', responses: { 200: json('Landing page') } } },
      '/conformance': {
        get: { operationId: 'conformance', summary: 'Conformance classes', responses: { 200: json('Conformance') } },
      },
      '/api': {
        get: {
          operationId: 'api',
          summary: 'This document',
          responses: { 200: json('OpenAPI 3.0', 'application/vnd.oai.openapi+json;version=3.0') },
        },
      },
      '/collections': {
        get: { operationId: 'collections', summary: 'Collections', responses: { 200: json('Collections') } },
      },
      '/collections/{collectionId}': {
        get: {
          operationId: 'collection',
          parameters: [collectionId],
          responses: { 200: json('Collection'), 404: json('Not found') },
        },
      },
      '/collections/{collectionId}/queryables': {
        get: {
          operationId: 'queryables',
          parameters: [collectionId],
          responses: { 200: json('Queryables (JSON Schema)', 'application/schema+json'), 404: json('Not found') },
        },
      },
      '/collections/{collectionId}/items': {
        get: {
          operationId: 'items',
          parameters: [
            collectionId,
            p('limit', { type: 'integer', minimum: 1, maximum: MAX_LIMIT, default: 10 }, 'Features per page'),
            // OGC API Features 1.0 §7.15.3: one comma-separated value (style form, explode false).
            p(
              'bbox',
              { type: 'array', items: { type: 'number' }, minItems: 4, maxItems: 6 },
              'west,south,east,north in CRS84 (west > east crosses the antimeridian)',
              false,
              { style: 'form', explode: false },
            ),
            p(
              'datetime',
              { type: 'string' },
              'RFC 3339 instant or interval (start/end, .. for an open end); only for collections with a time column',
              false,
              { style: 'form', explode: false },
            ),
            p('offset', { type: 'integer', minimum: 0, default: 0 }, 'Features to skip'),
            p(
              'after',
              { type: 'string' },
              'Features whose id (primary key) is above this one, in key order (what next links use)',
            ),
          ],
          responses: {
            200: json('Features', 'application/geo+json'),
            400: json('Bad parameter'),
            404: json('Not found'),
          },
        },
      },
      '/collections/{collectionId}/items/{featureId}': {
        get: {
          operationId: 'item',
          parameters: [collectionId, p('featureId', { type: 'string' }, 'Feature id (primary key)', true)],
          responses: { 200: json('Feature', 'application/geo+json'), 404: json('Not found') },
        },
      },
      '/collections/{collectionId}/tiles/WebMercatorQuad': {
        get: {
          operationId: 'tilejson',
          parameters: [collectionId],
          responses: { 200: json('TileJSON 3.0.0'), 404: json('Not found') },
        },
      },
      '/collections/{collectionId}/tiles/WebMercatorQuad/{z}/{x}/{y}': {
        get: {
          operationId: 'tile',
          parameters: [
            collectionId,
            p('z', { type: 'integer', minimum: 0, maximum: MAX_ZOOM }, 'Zoom level', true),
            p('x', { type: 'integer', minimum: 0 }, 'Column', true),
            p('y', { type: 'integer', minimum: 0 }, 'Row (from the north)', true),
          ],
          responses: {
            200: { description: 'Mapbox Vector Tile', content: { 'application/vnd.mapbox-vector-tile': {} } },
            400: json('Bad tile address'),
            404: json('Not found'),
          },
        },
      },
    },
  };
}

function sendText(res: ServerResponse, status: number, text: string, contentType: string): void {
  res
    .writeHead(status, {
      'content-type': contentType,
      'content-length': Buffer.byteLength(text),
      'access-control-allow-origin': '*',
    })
    .end(text);
}

/**
 * Builds the `/features` request handler. Returns true when it answered the request.
 *
 * @example
 *   const features = featuresRoutes({ pool, schemas: ['geo', 'geo_extra'] });
 *   http.createServer(async (req, res) => {
 *     const url = new URL(req.url ?? '/', `http://${req.headers.host}`);
 *     if (!(await features(req, res, url))) { res.writeHead(404); res.end(); }
 *   });
 */
export function featuresRoutes(deps: {
  pool: Pool;
  /** One schema (the first of `schemas` when both are given). */
  schema?: string;
  /** The schemas served, in order (CM_GEO_SCHEMAS). */
  schemas?: readonly string[];
}): (req: IncomingMessage, res: ServerResponse, url: URL) => Promise<boolean> {
  const schemas = [...new Set([...(deps.schema ? [deps.schema] : []), ...(deps.schemas ?? [])])];
  if (!schemas.length) schemas.push('geo');
  for (const schema of schemas)
    if (!IDENT.test(schema))
      throw new Error(`featuresRoutes: schema must match ${IDENT.source}, got ${JSON.stringify(schema)}`);
  const { pool } = deps;

  // The catalog (published tables, their columns) is kept until a statement finds a table's
  // version changed (or fails), or a collection is not found: a page then costs one statement.
  // The listing and the collection documents read it again.
  type Catalog = { collections: Promise<Collection[]>; columns: Map<string, Promise<TableColumn[]>> };
  let catalog: Catalog | null = null;
  const reload = (): Catalog => {
    const collections = listPublishedTables(pool, schemas).then((t) => withCollectionIds(t));
    const fresh: Catalog = { collections, columns: new Map() };
    catalog = fresh;
    collections.catch(() => {
      if (catalog === fresh) catalog = null;
    });
    return fresh;
  };

  async function collections(fresh = false): Promise<Collection[]> {
    return (fresh || !catalog ? reload() : catalog).collections;
  }

  function columnsOf(c: Collection): Promise<TableColumn[]> {
    const cache = (catalog ?? reload()).columns;
    const id = `${c.id}\n${c.version}`;
    let cols = cache.get(id);
    if (!cols) {
      cols = tableColumns(pool, c);
      cache.set(id, cols);
      cols.catch(() => cache.delete(id));
    }
    return cols;
  }

  /** The collection `id`, from the cached catalog (read again when it is not there, or `fresh`). */
  async function collection(id: string, fresh = false): Promise<Collection> {
    let c = (await collections(fresh)).find((x) => x.id === id);
    if (!c && !fresh) c = (await collections(true)).find((x) => x.id === id);
    if (!c) throw new HttpError(404, 'NotFound', `No collection ${JSON.stringify(id)}`);
    return c;
  }

  /**
   * Runs `read` on the cached collection; when it returns nothing (a stale version gives no row)
   * and the table's version changed, or it fails, the catalog is read again and, if the table
   * changed, `read` runs once more on it.
   */
  async function current<T>(
    c: Collection,
    read: (c: Collection) => Promise<T[]>,
  ): Promise<{ c: Collection; rows: T[] }> {
    let failure: { err: unknown } | null = null;
    const rows = await read(c).catch((err: unknown) => {
      failure = { err };
      return [] as T[];
    });
    if (rows.length) return { c, rows };
    // An empty page (a bbox with nothing in it) of an unchanged table: one catalog lookup, the
    // whole catalog is not read again.
    if (!failure) {
      const { rows: v } = await pool.query<{ v: string | null }>(
        named(`select ${tableVersionSql(`to_regclass(${quoteLiteral(tableSql(c))})`)} as v`, []),
      );
      if (v[0]?.v === c.version) return { c, rows };
    }
    const now = (await collections(true)).find((x) => x.id === c.id);
    if (!now) throw new HttpError(404, 'NotFound', `No collection ${JSON.stringify(c.id)}`);
    if (now.version !== c.version) return { c: now, rows: await read(now) };
    if (failure) throw (failure as { err: unknown }).err;
    return { c, rows };
  }

  return async (req, res, url) => {
    const path = url.pathname.replace(/\/+$/, '');
    if (path !== '/features' && !path.startsWith('/features/')) return false;
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      send(res, 405, { code: 'MethodNotAllowed', description: `${req.method} is not supported` });
      return true;
    }
    const base = baseUrl(req, '/features');
    const parts = path.split('/').slice(2).map(decodeURIComponent);
    try {
      if (!(parts[0] === 'collections' && parts[2] === 'items' && parts.length === 3)) checkParams(url, ['f']);
      if (parts.length === 0) {
        send(res, 200, {
          title: 'CoreMachine OGC API - Features',
          description: `Vector tables of schema${schemas.length > 1 ? 's' : ''} ${schemas.join(', ')}`,
          links: [
            { href: base, rel: 'self', type: 'application/json', title: 'This document' },
            {
              href: `${base}/api`,
              rel: 'service-desc',
              type: 'application/vnd.oai.openapi+json;version=3.0',
              title: 'OpenAPI definition',
            },
            { href: `${base}/conformance`, rel: 'conformance', type: 'application/json', title: 'Conformance classes' },
            { href: `${base}/collections`, rel: 'data', type: 'application/json', title: 'Collections' },
          ],
        });
      } else if (parts.length === 1 && parts[0] === 'conformance') {
        send(res, 200, { conformsTo: CONFORMANCE });
      } else if (parts.length === 1 && parts[0] === 'api') {
        send(res, 200, openapi(base), 'application/vnd.oai.openapi+json;version=3.0');
      } else if (parts[0] === 'collections' && parts.length === 1) {
        const all = await collections(true);
        const docs = await Promise.all(all.map(async (c) => collectionDoc(base, c, await extentOf(pool, c))));
        send(res, 200, {
          links: [{ href: `${base}/collections`, rel: 'self', type: 'application/json' }],
          collections: docs,
        });
      } else if (parts[0] === 'collections' && parts.length >= 2) {
        const rest = parts.slice(2);
        // Documents of the collection read the catalog again; items and tiles use the cache.
        const doc = rest.length === 0 || (rest.length === 1 && rest[0] !== 'items');
        const c = await collection(parts[1]!, doc || (rest[0] === 'tiles' && rest.length === 2));
        if (rest.length === 0) {
          const columns = await columnsOf(c);
          send(res, 200, collectionDoc(base, c, await extentOf(pool, c), columns));
        } else if (rest.length === 1 && (rest[0] === 'queryables' || rest[0] === 'schema')) {
          send(res, 200, queryablesDoc(base, c, await columnsOf(c), rest[0]), 'application/schema+json');
        } else if (rest[0] === 'items' && rest.length === 1) {
          await items(res, base, c, url);
        } else if (rest[0] === 'items' && rest.length === 2) {
          await item(res, base, c, rest[1]!);
        } else if (rest[0] === 'tiles' && rest[1] === 'WebMercatorQuad' && rest.length === 2) {
          await tileJson(res, base, c);
        } else if (rest[0] === 'tiles' && rest[1] === 'WebMercatorQuad' && rest.length === 5) {
          await tile(res, c, rest[2]!, rest[3]!, rest[4]!);
        } else {
          throw new HttpError(404, 'NotFound', `No resource ${path}`);
        }
      } else {
        return false;
      }
    } catch (err) {
      if (err instanceof HttpError) send(res, err.status, { code: err.code, description: err.message });
      else {
        catalog = null;
        send(res, 500, { code: 'ServerError', description: (err as Error).message });
      }
    }
    return true;
  };

  async function items(res: ServerResponse, base: string, cached: Collection, url: URL): Promise<void> {
    checkParams(url, ITEMS_PARAMS);
    const limit = Math.min(intParam('limit', url.searchParams.get('limit'), 1, 10), MAX_LIMIT);
    const offset = intParam('offset', url.searchParams.get('offset'), 0, 0);
    const after = url.searchParams.get('after');
    if (after !== null && keyArg(cached, after) === null)
      throw new HttpError(
        400,
        'InvalidParameterValue',
        `after must be a feature id of ${cached.id}, got ${JSON.stringify(after)}`,
      );
    const bboxText = url.searchParams.get('bbox');
    const bbox: Bbox | null = bboxText === null ? null : parseBbox(bboxText);
    const datetime = url.searchParams.get('datetime');
    const range = datetime === null ? null : datetimeRange(datetime);
    const filtered = bbox !== null || range !== null;
    if (range && !timeColumn(await columnsOf(cached)))
      throw new HttpError(
        400,
        'InvalidParameter',
        `Collection ${cached.id} has no time column: datetime is not supported on it`,
      );

    /**
     * The page as one row: `f` the JSON texts of the rows read joined by commas (PostgreSQL
     * builds the whole array's text, so the client parses one value, not a row per feature), `n`
     * the rows read (limit + 1 of them, to know whether a next page exists) and `k` the key of
     * the page's last feature (for the `next` link). No row when the table is not the cached one.
     */
    const read = async (c: Collection) => {
      const columns = await columnsOf(c);
      const values: unknown[] = [c.version];
      const arg = (v: unknown) => {
        values.push(v);
        return `$${values.length}`;
      };
      // Filters on alias k: the page's rows are selected from `tableSql(c) k`.
      const where = [versionFilter(c, '$1')];
      if (bbox) where.push(bboxSql(geomSql(c, 'k'), bbox, arg, c.srid || 4326));
      if (range) {
        const time = timeColumn(columns);
        if (!time)
          throw new HttpError(
            400,
            'InvalidParameter',
            `Collection ${c.id} has no time column: datetime is not supported on it`,
          );
        const col = `k.${quoteIdent(time.name)}`;
        const cast = time.type === 'date' ? 'date' : 'timestamptz';
        if (range.start !== null) where.push(`${col} >= ${arg(range.start)}::timestamptz::${cast}`);
        if (range.end !== null) where.push(`${col} <= ${arg(range.end)}::timestamptz::${cast}`);
      }
      const key = quoteIdent(c.key);
      if (after !== null) where.push(`k.${key} > ${arg(keyArg(c, after))}::${c.keyType}`);
      const pageSize = arg(limit);
      const page = `order by k.${key} limit ${arg(limit + 1)}${offset ? ` offset ${arg(offset)}` : ''}`;
      // With an offset, the page's keys first (the rows skipped are read from the key index
      // only), then their rows by key lookups (an array, so that no join scans the key index).
      const rowsOf = offset
        ? `${tableSql(c)} t where t.${key} = any(array(select k.${key} from ${tableSql(c)} k
             where ${where.join(' and ')} ${page}))`
        : `(select * from ${tableSql(c)} k where ${where.join(' and ')} ${page}) t`;
      // The rows in key order, aggregated in that order (no window, no sort in the aggregates).
      const text = `select string_agg(p.f, ',') as f, count(*)::int as n, (array_agg(p.k))[${pageSize}] as k
        from (select ${featureText(c, columns)} as f, t.${key}::text as k from ${rowsOf} order by t.${key}) p`;
      // Pages without filters are prepared statements (parsed and planned once per connection);
      // filtered ones are planned for their values.
      const { rows } = await pool.query<{ f: string | null; n: number; k: string | null }>(
        filtered ? { text, values } : named(text, values),
      );
      return rows.filter((r) => r.n > 0);
    };
    const { c, rows } = await current(cached, read);
    const n = rows[0]?.n ?? 0;
    const more = n > limit;
    const returned = Math.min(n, limit);
    const matched: number | null = filtered
      ? !more && after === null && (offset === 0 || returned > 0)
        ? offset + returned
        : null
      : c.facts
        ? c.facts.rows
        : await countRows(c);
    const self = new URL(`${base}/collections/${c.id}/items`);
    const link = (page: { offset?: number; after?: string }) => {
      const u = new URL(self);
      u.searchParams.set('limit', String(limit));
      if (bboxText !== null) u.searchParams.set('bbox', bbox!.join(','));
      if (datetime !== null) u.searchParams.set('datetime', datetime);
      if (page.after !== undefined) u.searchParams.set('after', page.after);
      if (page.offset) u.searchParams.set('offset', String(page.offset));
      return u.toString();
    };
    const links = [
      { href: link({ offset, ...(after !== null ? { after } : {}) }), rel: 'self', type: 'application/geo+json' },
      { href: `${base}/collections/${c.id}`, rel: 'collection', type: 'application/json' },
    ];
    if (more) links.push({ href: link({ after: rows[0]!.k! }), rel: 'next', type: 'application/geo+json' });
    if (offset > 0 && after === null)
      links.push({ href: link({ offset: Math.max(0, offset - limit) }), rel: 'prev', type: 'application/geo+json' });
    const head = {
      type: 'FeatureCollection',
      ...(matched !== null ? { numberMatched: matched } : {}),
      numberReturned: returned,
      timeStamp: new Date().toISOString(),
      links,
    };
    // The features are JSON text from PostgreSQL, written as they are (not parsed and re-encoded).
    // The row read past the page is cut off at its start: `,{"type":"Feature","id":` is found
    // nowhere else (quotes inside JSON strings are escaped).
    let f = rows[0]?.f ?? '';
    if (more) f = f.slice(0, f.lastIndexOf(FEATURE_START));
    const text = `${JSON.stringify(head).slice(0, -1)},"features":[${f}]}`;
    sendText(res, 200, text, 'application/geo+json');
  }

  /** Rows of a table without stored facts: exact up to MATCH_COUNT_LIMIT, null above. */
  async function countRows(c: Collection): Promise<number | null> {
    const { rows } = await pool.query<{ n: number }>(
      `select count(*)::int as n from (select 1 from ${tableSql(c)} limit ${MATCH_COUNT_LIMIT + 1}) s`,
    );
    return rows[0]!.n > MATCH_COUNT_LIMIT ? null : rows[0]!.n;
  }

  /** The key value in the key's own type, or null when `id` cannot be one (no such feature). */
  function keyArg(c: Collection, id: string): string | null {
    if (/^(smallint|integer|bigint)$/.test(c.keyType)) return /^-?\d{1,19}$/.test(id) ? id : null;
    if (/^(real|double precision|numeric)/.test(c.keyType)) return Number.isFinite(Number(id)) ? id : null;
    if (c.keyType === 'uuid') return /^[0-9a-f]{8}-?([0-9a-f]{4}-?){3}[0-9a-f]{12}$/i.test(id) ? id : null;
    return id;
  }

  async function item(res: ServerResponse, base: string, cached: Collection, id: string): Promise<void> {
    const read = async (c: Collection) => {
      const key = keyArg(c, id);
      if (key === null) return [];
      const columns = await columnsOf(c);
      const text = `select ${featureText(c, columns)} as f from ${tableSql(c)} t
        where ${versionFilter(c, '$1')} and t.${quoteIdent(c.key)} = $2::${c.keyType}`;
      const { rows } = await pool.query<{ f: string }>(named(text, [c.version, key])).catch((err: unknown) => {
        // A value out of the key type's range is no feature of it.
        if ((err as { code?: string }).code?.startsWith('22')) return { rows: [] as { f: string }[] };
        throw err;
      });
      return rows;
    };
    const { c, rows } = await current(cached, read);
    const f = rows[0]?.f;
    if (!f) throw new HttpError(404, 'NotFound', `No feature ${JSON.stringify(id)} in ${c.id}`);
    const links = [
      {
        href: `${base}/collections/${c.id}/items/${encodeURIComponent(id)}`,
        rel: 'self',
        type: 'application/geo+json',
      },
      { href: `${base}/collections/${c.id}`, rel: 'collection', type: 'application/json' },
    ];
    sendText(res, 200, `${f.slice(0, -1)},"links":${JSON.stringify(links)}}`, 'application/geo+json');
  }

  async function tileJson(res: ServerResponse, base: string, c: Collection): Promise<void> {
    const columns = await columnsOf(c);
    const extent = await extentOf(pool, c);
    const fields: Record<string, string> = {};
    for (const col of columns) {
      const t = jsonSchemaOf(col.type).type;
      fields[col.name] = t === 'integer' || t === 'number' ? 'Number' : t === 'boolean' ? 'Boolean' : 'String';
    }
    send(res, 200, {
      tilejson: '3.0.0',
      name: c.id,
      scheme: 'xyz',
      tiles: [`${base}/collections/${c.id}/tiles/WebMercatorQuad/{z}/{x}/{y}`],
      minzoom: 0,
      maxzoom: MAX_ZOOM,
      ...(extent ? { bounds: extent, center: [(extent[0]! + extent[2]!) / 2, (extent[1]! + extent[3]!) / 2, 2] } : {}),
      vector_layers: [{ id: c.id, fields, minzoom: 0, maxzoom: MAX_ZOOM }],
    });
  }

  async function tile(res: ServerResponse, cached: Collection, zs: string, xs: string, ys: string): Promise<void> {
    const [z, x, y] = [zs, xs, ys].map((v) => (/^\d{1,8}$/.test(v) ? Number(v) : -1)) as [number, number, number];
    const n = 2 ** z;
    if (z < 0 || z > MAX_ZOOM || x < 0 || y < 0 || x >= n || y >= n)
      throw new HttpError(
        400,
        'InvalidParameterValue',
        `No tile ${zs}/${xs}/${ys} in WebMercatorQuad: z must be 0..${MAX_ZOOM}, x and y 0..2^z-1`,
      );
    const read = async (c: Collection) => {
      const columns = await columnsOf(c);
      const numericKey = /^(smallint|integer|bigint)$/.test(c.keyType);
      const attrs = columns.map((col) => `t.${quoteIdent(col.name)}`);
      const env = 'ST_TileEnvelope($1, $2, $3)';
      const inTable = c.srid && c.srid !== 3857 ? `ST_Transform(${env}, ${c.srid})` : env;
      const { rows } = await pool.query<{ mvt: Buffer; v: string | null }>(
        named(
          `select ST_AsMVT(m.*, $4, 4096, 'geom'${numericKey ? ", 'cm_id'" : ''}) as mvt,
                ${tableVersionSql(`to_regclass(${quoteLiteral(tableSql(c))})`)} as v
           from (select ST_AsMVTGeom(ST_Transform(${geomSql(c)}, 3857), ${env}, 4096, 64, true) as geom,
                        t.${quoteIdent(c.key)}${numericKey ? ' as cm_id' : ''}${attrs.length ? `, ${attrs.join(', ')}` : ''}
                   from ${tableSql(c)} t where ${geomSql(c)} && ${inTable}) m
          where m.geom is not null`,
          [z, x, y, c.id],
        ),
      );
      // The tile of the cached table only: another version reads the catalog again.
      return rows.filter((r) => r.v === c.version);
    };
    const { rows } = await current(cached, read);
    const body = rows[0]?.mvt ?? Buffer.alloc(0);
    res
      .writeHead(200, {
        'content-type': 'application/vnd.mapbox-vector-tile',
        'content-length': body.length,
        'access-control-allow-origin': '*',
      })
      .end(body);
  }
}
