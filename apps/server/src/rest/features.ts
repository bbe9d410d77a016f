/**
 * OGC API - Features, Part 1 (core, GeoJSON, OpenAPI 3.0) over the PostGIS tables of one
 * schema (default `geo`): every table with a geometry column and a one-column primary key is
 * a collection. Mounted under `/features`; links are absolute, built from the Host header.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Pool } from 'pg';
import { quoteLiteral } from '@coremachine/core-machine';
import { baseUrl, HttpError, sendJson as send } from './http.ts';

const CONFORMANCE = [
  'http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/core',
  'http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/geojson',
  'http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/oas30',
];
const CRS84 = 'http://www.opengis.net/def/crs/OGC/1.3/CRS84';
const IDENT = /^[a-z_][a-z0-9_]*$/;
const q = (name: string) => `"${name.replace(/"/g, '""')}"`;

interface Collection {
  table: string;
  geom: string;
  id: string;
}

async function listCollections(pool: Pool, schema: string, only?: string): Promise<Collection[]> {
  const { rows } = await pool.query<{ table: string; geom: string; id: string | null }>(
    `select g.f_table_name as table, g.f_geometry_column as geom,
            (select a.attname from pg_index i join pg_attribute a on a.attrelid = i.indrelid and a.attnum = i.indkey[0]
              where i.indrelid = c.oid and i.indisprimary and i.indnatts = 1) as id
       from geometry_columns g
       join pg_class c on c.relname = g.f_table_name
       join pg_namespace n on n.oid = c.relnamespace and n.nspname = g.f_table_schema
      where g.f_table_schema = $1 and ($2::text is null or g.f_table_name = $2) and g.f_table_name not like 'cm_stage_%'
      order by 1`,
    [schema, only ?? null],
  );
  // First geometry column per table; tables without a single-column key cannot serve items/{id}.
  const seen = new Set<string>();
  return rows
    .filter((r) => r.id && !seen.has(r.table) && seen.add(r.table))
    .map((r) => ({ table: r.table, geom: r.geom, id: r.id! }));
}

function collectionDoc(base: string, c: Collection, extent: number[] | null) {
  const self = `${base}/collections/${c.table}`;
  return {
    id: c.table,
    title: c.table,
    itemType: 'feature',
    crs: [CRS84],
    ...(extent ? { extent: { spatial: { bbox: [extent], crs: CRS84 } } } : {}),
    links: [
      { href: self, rel: 'self', type: 'application/json', title: 'This collection' },
      { href: `${self}/items`, rel: 'items', type: 'application/geo+json', title: 'Features' },
    ],
  };
}

async function extentOf(pool: Pool, schema: string, c: Collection): Promise<number[] | null> {
  const { rows } = await pool.query(`select st_xmin(e) a, st_ymin(e) b, st_xmax(e) c, st_ymax(e) d
    from (select st_extent(st_transform(${q(c.geom)}, 4326))::box3d e from ${q(schema)}.${q(c.table)}) s`);
  const r = rows[0];
  return r && r.a !== null ? [r.a, r.b, r.c, r.d] : null;
}

function parseLimit(v: string | null): number {
  if (v === null) return 10;
  const n = Number(v);
  if (!Number.isInteger(n) || n < 1)
    throw new HttpError(400, 'InvalidParameterValue', `limit must be an integer >= 1, got ${JSON.stringify(v)}`);
  return Math.min(n, 10_000);
}

function parseOffset(v: string | null): number {
  if (v === null) return 0;
  const n = Number(v);
  if (!Number.isInteger(n) || n < 0)
    throw new HttpError(400, 'InvalidParameterValue', `offset must be an integer >= 0, got ${JSON.stringify(v)}`);
  return n;
}

function parseBbox(v: string | null): number[] | null {
  if (v === null) return null;
  const parts = v.split(',').map(Number);
  if ((parts.length !== 4 && parts.length !== 6) || parts.some((x) => !Number.isFinite(x))) {
    throw new HttpError(
      400,
      'InvalidParameterValue',
      `bbox must be 4 (or 6) comma-separated numbers minx,miny,maxx,maxy, got ${JSON.stringify(v)}`,
    );
  }
  return parts.length === 6 ? [parts[0]!, parts[1]!, parts[3]!, parts[4]!] : parts;
}

const featureSql = (schema: string, c: Collection) => `
  select json_build_object('type', 'Feature', 'id', t.${q(c.id)},
           'geometry', st_asgeojson(st_transform(t.${q(c.geom)}, 4326), 9)::json,
           'properties', to_jsonb(t) - ${quoteLiteral(c.geom)} - ${quoteLiteral(c.id)}) as f
    from ${q(schema)}.${q(c.table)} t`;

function openapi(base: string) {
  const p = (name: string, schema: object, description: string, inPath = false) => ({
    name,
    in: inPath ? 'path' : 'query',
    required: inPath,
    schema,
    description,
  });
  const json = (description: string, type = 'application/json') => ({
    description,
    content: { [type]: { schema: { type: 'object' } } },
  });
  return {
    openapi: '3.0.3',
    info: {
      title: 'CoreMachine OGC API - Features',
      version: '1.0.0',
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
          parameters: [p('collectionId', { type: 'string' }, 'Table name', true)],
          responses: { 200: json('Collection'), 404: json('Not found') },
        },
      },
      '/collections/{collectionId}/items': {
        get: {
          operationId: 'items',
          parameters: [
            p('collectionId', { type: 'string' }, 'Table name', true),
            p('limit', { type: 'integer', minimum: 1, maximum: 10000, default: 10 }, 'Features per page'),
            p(
              'bbox',
              { type: 'array', items: { type: 'number' }, minItems: 4, maxItems: 6 },
              'minx,miny,maxx,maxy in CRS84',
            ),
            p('offset', { type: 'integer', minimum: 0, default: 0 }, 'Features to skip (next links)'),
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
          parameters: [
            p('collectionId', { type: 'string' }, 'Table name', true),
            p('featureId', { type: 'string' }, 'Feature id', true),
          ],
          responses: { 200: json('Feature', 'application/geo+json'), 404: json('Not found') },
        },
      },
    },
  };
}

/**
 * Builds the `/features` request handler. Returns true when it answered the request.
 *
 * @example
 *   const features = featuresRoutes({ pool });
 *   http.createServer(async (req, res) => {
 *     const url = new URL(req.url ?? '/', `http://${req.headers.host}`);
 *     if (!(await features(req, res, url))) { res.writeHead(404); res.end(); }
 *   });
 */
export function featuresRoutes(deps: {
  pool: Pool;
  schema?: string;
}): (req: IncomingMessage, res: ServerResponse, url: URL) => Promise<boolean> {
  const schema = deps.schema ?? 'geo';
  if (!IDENT.test(schema))
    throw new Error(`featuresRoutes: schema must match ${IDENT.source}, got ${JSON.stringify(schema)}`);
  const { pool } = deps;
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
      if (parts.length === 0) {
        send(res, 200, {
          title: 'CoreMachine OGC API - Features',
          description: `Vector tables of schema ${schema}`,
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
        const all = await listCollections(pool, schema);
        const docs = await Promise.all(all.map(async (c) => collectionDoc(base, c, await extentOf(pool, schema, c))));
        send(res, 200, {
          links: [{ href: `${base}/collections`, rel: 'self', type: 'application/json' }],
          collections: docs,
        });
      } else if (parts[0] === 'collections' && parts.length >= 2 && parts.length <= 4) {
        const name = parts[1]!;
        const [c] = IDENT.test(name) ? await listCollections(pool, schema, name) : [];
        if (!c) throw new HttpError(404, 'NotFound', `No collection ${JSON.stringify(name)}`);
        if (parts.length === 2) send(res, 200, collectionDoc(base, c, await extentOf(pool, schema, c)));
        else if (parts[2] !== 'items') throw new HttpError(404, 'NotFound', `No resource ${path}`);
        else if (parts.length === 4) await item(res, base, c, parts[3]!);
        else await items(res, base, c, url);
      } else {
        return false;
      }
    } catch (err) {
      if (err instanceof HttpError) send(res, err.status, { code: err.code, description: err.message });
      else send(res, 500, { code: 'ServerError', description: (err as Error).message });
    }
    return true;
  };

  async function items(res: ServerResponse, base: string, c: Collection, url: URL): Promise<void> {
    const limit = parseLimit(url.searchParams.get('limit'));
    const offset = parseOffset(url.searchParams.get('offset'));
    const bbox = parseBbox(url.searchParams.get('bbox'));
    const where = bbox
      ? `where t.${q(c.geom)} && st_transform(st_makeenvelope($1, $2, $3, $4, 4326), st_srid(t.${q(c.geom)}))`
      : '';
    const args = bbox ?? [];
    const page = await pool.query<{ f: unknown }>(
      `${featureSql(schema, c)} ${where} order by t.${q(c.id)} limit ${limit} offset ${offset}`,
      args,
    );
    const matched = await pool.query<{ n: number }>(
      `select count(*)::bigint as n from ${q(schema)}.${q(c.table)} t ${where}`,
      args,
    );
    const n = Number(matched.rows[0]?.n ?? 0);
    const self = new URL(`${base}/collections/${c.table}/items`);
    const link = (off: number) => {
      const u = new URL(self);
      u.searchParams.set('limit', String(limit));
      if (bbox) u.searchParams.set('bbox', bbox.join(','));
      if (off) u.searchParams.set('offset', String(off));
      return u.toString();
    };
    const links = [
      { href: link(offset), rel: 'self', type: 'application/geo+json' },
      { href: `${base}/collections/${c.table}`, rel: 'collection', type: 'application/json' },
    ];
    if (offset + page.rows.length < n)
      links.push({ href: link(offset + limit), rel: 'next', type: 'application/geo+json' });
    if (offset > 0) links.push({ href: link(Math.max(0, offset - limit)), rel: 'prev', type: 'application/geo+json' });
    send(
      res,
      200,
      {
        type: 'FeatureCollection',
        features: page.rows.map((r) => r.f),
        numberMatched: n,
        numberReturned: page.rows.length,
        timeStamp: new Date().toISOString(),
        links,
      },
      'application/geo+json',
    );
  }

  async function item(res: ServerResponse, base: string, c: Collection, id: string): Promise<void> {
    const { rows } = await pool.query<{ f: Record<string, unknown> }>(
      `${featureSql(schema, c)} where t.${q(c.id)}::text = $1`,
      [id],
    );
    const f = rows[0]?.f;
    if (!f) throw new HttpError(404, 'NotFound', `No feature ${JSON.stringify(id)} in ${c.table}`);
    send(
      res,
      200,
      {
        ...f,
        links: [
          {
            href: `${base}/collections/${c.table}/items/${encodeURIComponent(id)}`,
            rel: 'self',
            type: 'application/geo+json',
          },
          { href: `${base}/collections/${c.table}`, rel: 'collection', type: 'application/json' },
        ],
      },
      'application/geo+json',
    );
  }
}
