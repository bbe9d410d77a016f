/**
 * STAC API v1.0.0 (core, collections, OGC API Features items, item search) over the STAC store.
 * Links are absolute, built from the request's Host (and X-Forwarded-Proto/Host behind a proxy),
 * so GDAL's STACIT driver, pystac-client and QGIS can follow them.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Pool } from 'pg';
import {
  DEFAULT_STAC_SCHEMA,
  getCollection,
  getItem,
  listCollections,
  MAX_LIMIT,
  parseDatetime,
  searchItems,
  STAC_EXTENSIONS,
  StacError,
  upsertCollection,
  withStacLinks,
  type ItemSearch,
  type StacCollection,
  type StacItem,
  type StacLink,
} from '@coremachine/geo/stac';
import type { BlobStorage } from '@coremachine/storage';
import { ASSETS_PREFIX } from './assets.ts';
import { parseBbox } from './bbox.ts';
import { OPENAPI_TYPE, stacOpenApi } from './stac-openapi.ts';
import { baseUrl as mountedUrl, HttpError, readJson, sendJson as send } from './http.ts';

const baseUrl = (req: IncomingMessage) => mountedUrl(req, '/stac');

export const CONFORMANCE = [
  'https://api.stacspec.org/v1.0.0/core',
  'https://api.stacspec.org/v1.0.0/collections',
  'https://api.stacspec.org/v1.0.0/ogcapi-features',
  'https://api.stacspec.org/v1.0.0/item-search',
  'http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/core',
  'http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/geojson',
] as const;

const JSON_TYPE = 'application/json';
const PROJECTION_V2 = 'https://stac-extensions.github.io/projection/v2.0.0/schema.json';
const PROJECTION_V1_1 = 'https://stac-extensions.github.io/projection/v1.1.0/schema.json';
const GEOJSON = 'application/geo+json';

/**
 * The item in projection extension v1.1.0 form (`proj:epsg` instead of `proj:code`), for
 * clients that predate projection v2.0.0: GDAL's STACIT driver up to at least 3.6 skips assets
 * without `proj:epsg`, which v2.0.0 forbids. Asked for with `?projection=v1.1`.
 */
export function toProjectionV1(item: StacItem): StacItem {
  // stac_extensions is optional in STAC 1.0.0: an item stored without it has no extension.
  if (!(item.stac_extensions ?? []).includes(PROJECTION_V2)) return item;
  const convert = <T extends Record<string, unknown>>(fields: T): T => {
    if (!('proj:code' in fields)) return fields;
    const { 'proj:code': code, ...rest } = fields;
    const epsg = typeof code === 'string' ? /^EPSG:(\d+)$/.exec(code) : null;
    return { ...rest, 'proj:epsg': epsg ? Number(epsg[1]) : null } as unknown as T;
  };
  return {
    ...item,
    stac_extensions: item.stac_extensions.map((e) => (e === PROJECTION_V2 ? PROJECTION_V1_1 : e)),
    properties: convert(item.properties),
    assets: Object.fromEntries(Object.entries(item.assets).map(([k, a]) => [k, convert(a)])),
  };
}

function projectionOf(url: URL): (item: StacItem) => StacItem {
  const v = url.searchParams.get('projection');
  if (v === null || v === 'v2.0') return (i) => i;
  if (v === 'v1.1') return toProjectionV1;
  throw new HttpError(
    400,
    'InvalidParameterValue',
    `projection ${JSON.stringify(v)} is invalid: use v2.0 (default) or v1.1`,
  );
}

/**
 * Maps a stored asset href that is a blob URL of `storage` to its asset route
 * (`<base>/assets/<container>/<blob>`), or null for any other href.
 */
export function assetRouteFor(storage: BlobStorage): (href: string, base: string) => string | null {
  const probe = storage.blobUrl('probe', 'b');
  const prefix = probe.slice(0, probe.length - '/probe/b'.length) + '/';
  return (href, base) => {
    if (!href.startsWith(prefix) || href.includes('?')) return null;
    const path = href.slice(prefix.length);
    return path.includes('/') ? `${base}${ASSETS_PREFIX.slice('/stac'.length)}${path}` : null;
  };
}

/**
 * The item as served: each asset stored in the storage gets an alternate href through the asset
 * route (Alternate Assets extension), which clients of private containers can open; the stored
 * href (the stable blob URL) stays the asset's href.
 */
export function withAlternateAssets(
  item: StacItem,
  base: string,
  route: ((href: string, base: string) => string | null) | undefined,
): StacItem {
  if (!route) return item;
  let changed = false;
  const assets = Object.fromEntries(
    Object.entries(item.assets).map(([key, asset]) => {
      const href = typeof asset.href === 'string' ? route(asset.href, base) : null;
      if (!href) return [key, asset];
      changed = true;
      return [
        key,
        {
          ...asset,
          alternate: {
            ...(asset.alternate as Record<string, unknown> | undefined),
            coremachine: {
              href,
              title: 'Through the CoreMachine API (for private containers; supports range requests)',
            },
          },
        },
      ];
    }),
  );
  if (!changed) return item;
  const declared = item.stac_extensions ?? [];
  const extensions = declared.includes(STAC_EXTENSIONS.alternateAssets)
    ? declared
    : [...declared, STAC_EXTENSIONS.alternateAssets];
  return { ...item, stac_extensions: extensions, assets };
}

function collectionWithLinks(c: StacCollection, base: string): StacCollection {
  const self = `${base}/collections/${encodeURIComponent(c.id)}`;
  return {
    ...c,
    links: [
      { rel: 'self', href: self, type: JSON_TYPE },
      { rel: 'root', href: base, type: JSON_TYPE },
      { rel: 'parent', href: base, type: JSON_TYPE },
      { rel: 'items', href: `${self}/items`, type: GEOJSON },
    ],
  };
}

const list = (v: unknown, field: string): string[] | undefined => {
  if (v === undefined || v === null) return undefined;
  if (typeof v === 'string')
    return v
      .split(',')
      .map((s) => s.trim())
      .filter(Boolean);
  if (Array.isArray(v) && v.every((s) => typeof s === 'string')) return v;
  throw new HttpError(400, 'InvalidParameterValue', `${field} must be a list of strings`);
};

const limitOf = (v: unknown): number | undefined => {
  if (v === undefined || v === null || v === '') return undefined;
  const n = typeof v === 'number' ? v : Number(v);
  if (!Number.isInteger(n) || n < 1)
    throw new HttpError(
      400,
      'InvalidParameterValue',
      `limit ${JSON.stringify(v)} is invalid: use an integer of at least 1 (pages hold at most ${MAX_LIMIT} items)`,
    );
  // Above the maximum, a page of the maximum: OGC API Features servers clamp, they do not refuse.
  return Math.min(n, MAX_LIMIT);
};

/** Search parameters from a query string (GET) or a JSON body (POST). */
function searchFrom(source: Record<string, unknown>, fromQuery: boolean): ItemSearch {
  const known = new Set(['collections', 'ids', 'bbox', 'intersects', 'datetime', 'limit', 'token', 'projection']);
  const unknown = Object.keys(source).filter((k) => !known.has(k) && !(fromQuery && k === 'f'));
  if (unknown.length && !fromQuery)
    throw new HttpError(400, 'InvalidParameterValue', `unknown search parameter(s): ${unknown.join(', ')}`);
  const search: ItemSearch = {};
  const collections = list(source.collections, 'collections');
  const ids = list(source.ids, 'ids');
  if (collections) search.collections = collections;
  if (ids) search.ids = ids;
  if (source.bbox !== undefined) search.bbox = parseBbox(source.bbox);
  if (source.intersects !== undefined) {
    let g = source.intersects;
    if (typeof g === 'string') {
      try {
        g = JSON.parse(g);
      } catch {
        throw new HttpError(400, 'InvalidParameterValue', 'intersects must be a GeoJSON geometry (JSON)');
      }
    }
    search.intersects = g as ItemSearch['intersects'];
  }
  if (search.bbox && search.intersects)
    throw new HttpError(400, 'InvalidParameterValue', 'bbox and intersects cannot be used together: give one of them');
  if (source.datetime !== undefined && source.datetime !== '') {
    if (typeof source.datetime !== 'string')
      throw new HttpError(400, 'InvalidParameterValue', 'datetime must be a string');
    search.datetime = parseDatetime(source.datetime);
  }
  const limit = limitOf(source.limit);
  if (limit !== undefined) search.limit = limit;
  if (typeof source.token === 'string' && source.token) search.token = source.token;
  return search;
}

/**
 * The STAC API routes, to mount on the server's HTTP handler.
 * @returns a handler that answers /stac/* and returns true, or returns false for other paths.
 * @example
 *   const stac = stacRoutes({ pool, schema: 'stac' });
 *   http.createServer(async (req, res) => { const url = new URL(req.url!, 'http://x'); if (!(await stac(req, res, url))) res.end(); });
 */
export function stacRoutes(deps: {
  pool: Pool;
  schema?: string;
  /** When given, served items carry alternate hrefs of their blobs through the asset route (`assets.ts`). */
  storage?: BlobStorage;
}): (req: IncomingMessage, res: ServerResponse, url: URL) => Promise<boolean> {
  const { pool } = deps;
  const schema = deps.schema ?? DEFAULT_STAC_SCHEMA;
  const assetRoute = deps.storage ? assetRouteFor(deps.storage) : undefined;
  const serve = (i: StacItem, base: string) => withAlternateAssets(withStacLinks(i, base), base, assetRoute);

  const itemsPage = async (
    req: IncomingMessage,
    res: ServerResponse,
    search: ItemSearch,
    self: string,
    query: URLSearchParams | null,
    body: Record<string, unknown> | null,
    extra: StacLink[],
    render: (i: StacItem) => StacItem,
  ) => {
    const base = baseUrl(req);
    const page = await searchItems(pool, schema, search);
    const links: StacLink[] = [
      { rel: 'self', href: self, type: GEOJSON },
      { rel: 'root', href: base, type: JSON_TYPE },
      ...extra,
    ];
    if (page.next) {
      if (query) {
        const next = new URLSearchParams(query);
        next.set('token', page.next);
        links.push({ rel: 'next', href: `${self.split('?')[0]}?${next}`, type: GEOJSON, method: 'GET' });
      } else {
        links.push({ rel: 'next', href: self, type: GEOJSON, method: 'POST', body: { ...body, token: page.next } });
      }
    }
    return send(
      res,
      200,
      {
        type: 'FeatureCollection',
        features: page.items.map((i) => render(serve(i, base))),
        links,
        numberMatched: page.numberMatched,
        numberReturned: page.items.length,
      },
      GEOJSON,
    );
  };

  const route = async (req: IncomingMessage, res: ServerResponse, url: URL): Promise<boolean> => {
    const path = url.pathname.replace(/\/+$/, '') || '/';
    if (path !== '/stac' && !path.startsWith('/stac/')) return false;
    const method = req.method ?? 'GET';
    if (method === 'OPTIONS') {
      res
        .writeHead(204, {
          'access-control-allow-origin': '*',
          'access-control-allow-methods': 'GET, POST, PUT, OPTIONS',
          'access-control-allow-headers': 'content-type',
        })
        .end();
      return true;
    }
    const base = baseUrl(req);
    const parts = path.split('/').slice(2).map(decodeURIComponent);
    const query = Object.fromEntries(url.searchParams);

    if (parts.length === 0 && method === 'GET') {
      const collections = await listCollections(pool, schema);
      return send(res, 200, {
        type: 'Catalog',
        stac_version: '1.0.0',
        id: 'coremachine',
        title: 'CoreMachine STAC API',
        description: 'Rasters and vector datasets catalogued by CoreMachine jobs',
        conformsTo: CONFORMANCE,
        links: [
          { rel: 'self', href: base, type: JSON_TYPE },
          { rel: 'root', href: base, type: JSON_TYPE },
          {
            rel: 'service-desc',
            href: `${base}/api`,
            type: OPENAPI_TYPE,
            title: 'OpenAPI 3.0 description of this API',
          },
          { rel: 'conformance', href: `${base}/conformance`, type: JSON_TYPE },
          { rel: 'data', href: `${base}/collections`, type: JSON_TYPE },
          { rel: 'search', href: `${base}/search`, type: GEOJSON, method: 'GET' },
          { rel: 'search', href: `${base}/search`, type: GEOJSON, method: 'POST' },
          ...collections.map((c) => ({
            rel: 'child',
            href: `${base}/collections/${encodeURIComponent(c.id)}`,
            type: JSON_TYPE,
            title: c.title ?? c.id,
          })),
        ],
      });
    }
    if (parts[0] === 'api' && parts.length === 1 && method === 'GET')
      return send(res, 200, stacOpenApi(base), OPENAPI_TYPE);
    if (parts[0] === 'conformance' && parts.length === 1 && method === 'GET')
      return send(res, 200, { conformsTo: CONFORMANCE });

    if (parts[0] === 'search' && parts.length === 1) {
      if (method === 'GET')
        return itemsPage(
          req,
          res,
          searchFrom(query, true),
          `${base}/search${url.search}`,
          url.searchParams,
          null,
          [],
          projectionOf(url),
        );
      if (method === 'POST') {
        const body = await readJson(req);
        if (!body || typeof body !== 'object' || Array.isArray(body))
          throw new HttpError(400, 'InvalidParameterValue', 'search body must be a JSON object');
        return itemsPage(
          req,
          res,
          searchFrom(body as Record<string, unknown>, false),
          `${base}/search`,
          null,
          body as Record<string, unknown>,
          [],
          projectionOf(url),
        );
      }
    }

    if (parts[0] === 'collections') {
      if (parts.length === 1 && method === 'GET') {
        const collections = await listCollections(pool, schema);
        return send(res, 200, {
          collections: collections.map((c) => collectionWithLinks(c, base)),
          links: [
            { rel: 'self', href: `${base}/collections`, type: JSON_TYPE },
            { rel: 'root', href: base, type: JSON_TYPE },
          ],
        });
      }
      if (parts.length === 1 && method === 'POST') {
        const body = (await readJson(req)) as StacCollection;
        if (body?.id && (await getCollection(pool, schema, String(body.id))))
          throw new HttpError(
            409,
            'Conflict',
            `collection ${JSON.stringify(body.id)} already exists: PUT /stac/collections/${body.id} replaces it`,
          );
        await upsertCollection(pool, schema, { ...body, links: body?.links ?? [] });
        res.setHeader('location', `${base}/collections/${encodeURIComponent(body.id)}`);
        return send(res, 201, collectionWithLinks((await getCollection(pool, schema, body.id))!, base));
      }
      const id = parts[1]!;
      if (parts.length === 2 && method === 'PUT') {
        const body = (await readJson(req)) as StacCollection;
        if (body?.id !== id)
          throw new HttpError(
            400,
            'InvalidParameterValue',
            `body id ${JSON.stringify(body?.id)} does not match the path id ${JSON.stringify(id)}`,
          );
        const { inserted } = await upsertCollection(pool, schema, { ...body, links: body?.links ?? [] });
        return send(res, inserted ? 201 : 200, collectionWithLinks((await getCollection(pool, schema, id))!, base));
      }
      if (method !== 'GET' || parts.length > 4 || (parts.length >= 3 && parts[2] !== 'items'))
        return notFound(res, url);
      const collection = await getCollection(pool, schema, id);
      if (!collection)
        return send(res, 404, { code: 'NotFound', description: `collection ${JSON.stringify(id)} does not exist` });
      if (parts.length === 2) return send(res, 200, collectionWithLinks(collection, base));
      const colHref = `${base}/collections/${encodeURIComponent(id)}`;
      if (parts.length === 3) {
        const search = searchFrom(query, true);
        if (search.collections || search.ids || search.intersects) {
          throw new HttpError(
            400,
            'InvalidParameterValue',
            'collections, ids and intersects are search parameters: use /stac/search',
          );
        }
        return itemsPage(
          req,
          res,
          { ...search, collections: [id] },
          `${colHref}/items${url.search}`,
          url.searchParams,
          null,
          [
            { rel: 'parent', href: colHref, type: JSON_TYPE },
            { rel: 'collection', href: colHref, type: JSON_TYPE },
          ],
          projectionOf(url),
        );
      }
      const item = await getItem(pool, schema, id, parts[3]!);
      if (!item)
        return send(res, 404, {
          code: 'NotFound',
          description: `item ${JSON.stringify(parts[3])} does not exist in collection ${JSON.stringify(id)}`,
        });
      return send(res, 200, projectionOf(url)(serve(item, base)), GEOJSON);
    }
    return notFound(res, url);
  };

  return async (req, res, url) => {
    try {
      return await route(req, res, url);
    } catch (err) {
      if (err instanceof HttpError) return send(res, err.status, { code: err.code, description: err.message });
      if (err instanceof StacError) {
        return send(res, err.code === 'STAC_COLLECTION_NOT_FOUND' ? 404 : 400, {
          code: err.code === 'STAC_INVALID_QUERY' ? 'InvalidParameterValue' : err.code,
          description: err.message,
          ...(err.issues.length ? { issues: err.issues } : {}),
        });
      }
      throw err;
    }
  };
}

function notFound(res: ServerResponse, url: URL): true {
  return send(res, 404, { code: 'NotFound', description: `no STAC resource at ${url.pathname}` });
}
