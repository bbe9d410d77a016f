/**
 * STAC API conformance run over a populated catalogue: every document the API serves (landing
 * page, OpenAPI description, conformance, collections, each collection, item pages of every
 * collection, every item, search pages over GET and POST, following next links) is fetched the
 * way a client would and validated: the landing page against the STAC 1.0.0 Catalog schema,
 * collections against the Collection schema, items against the Item schema and every extension
 * they declare (all offline copies of the official schemas), the OpenAPI document against the
 * OpenAPI 3.0 schema, item pages as GeoJSON FeatureCollections with STAC API links.
 */
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Validator } from '@seriousme/openapi-schema-validator';
import { createPool, type Pool } from '@coremachine/core-machine';
import {
  DEFAULT_COLLECTIONS,
  ensureStacStore,
  registerBlobRaster,
  upsertCollection,
  validateCatalog,
  validateCollection,
  validateItem,
} from '@coremachine/geo/stac';
import {
  createStorage,
  ensureAzurite,
  storageConfigFromEnv,
  type AzuriteHandle,
  type BlobStorage,
} from '@coremachine/storage';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { assetRoutes } from './assets.ts';
import { stacRoutes } from './stac.ts';

const tag = randomBytes(4).toString('hex');
const schema = `stac_conf_${tag}`;
const container = `stacconf-${tag}`;
let pool: Pool;
let server: Server;
let base: string;
let storage: BlobStorage;
let azurite: AzuriteHandle;
const validated = { catalog: 0, collection: 0, item: 0, itemCollection: 0, openapi: 0 };

type Json = Record<string, any>;

async function getJson(url: string, init?: RequestInit): Promise<{ status: number; type: string | null; body: Json }> {
  const res = await fetch(url, init);
  return { status: res.status, type: res.headers.get('content-type'), body: (await res.json()) as Json };
}

function expectLinks(doc: Json, where: string) {
  expect(Array.isArray(doc.links), `${where}: links`).toBe(true);
  for (const l of doc.links) {
    expect(typeof l.rel, `${where}: link rel`).toBe('string');
    expect(URL.canParse(l.href), `${where}: link href ${l.href}`).toBe(true);
  }
}

function expectItem(item: Json, where: string) {
  expect(validateItem(item), `${where}: item ${item.id}`).toEqual([]);
  expect(item.links.map((l: Json) => l.rel)).toEqual(expect.arrayContaining(['self', 'parent', 'collection', 'root']));
  validated.item++;
}

/** An item page: a GeoJSON FeatureCollection of valid items with STAC API links; returns the next link. */
function expectItemPage(page: { status: number; type: string | null; body: Json }, where: string): Json | undefined {
  expect(page.status, where).toBe(200);
  expect(page.type).toBe('application/geo+json');
  expect(page.body.type).toBe('FeatureCollection');
  expect(Array.isArray(page.body.features)).toBe(true);
  expect(page.body.numberReturned).toBe(page.body.features.length);
  expect(Number.isInteger(page.body.numberMatched)).toBe(true);
  expectLinks(page.body, where);
  for (const f of page.body.features) expectItem(f, where);
  validated.itemCollection++;
  return page.body.links.find((l: Json) => l.rel === 'next');
}

/** Follows next links (GET or POST) from a first page; returns every item id seen. */
async function crawl(first: string, init?: { method: 'POST'; body: Json }): Promise<string[]> {
  const ids: string[] = [];
  let page = await getJson(
    first,
    init ? { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(init.body) } : {},
  );
  for (let n = 0; n < 50; n++) {
    const next = expectItemPage(page, first);
    ids.push(...page.body.features.map((f: Json) => f.id as string));
    if (!next) return ids;
    page =
      next.method === 'POST'
        ? await getJson(next.href, {
            method: 'POST',
            headers: { 'content-type': 'application/json' },
            body: JSON.stringify(next.body),
          })
        : await getJson(next.href);
  }
  throw new Error(`${first}: more than 50 pages`);
}

function cog(dir: string, name: string, args: string[]): string {
  const src = join(dir, `${name}.src.tif`);
  const out = join(dir, name);
  execFileSync('gdal_create', ['-q', '-of', 'GTiff', ...args, src]);
  execFileSync('gdal_translate', ['-q', '-of', 'COG', src, out]);
  return out;
}

beforeAll(async () => {
  pool = createPool(process.env.DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/coremachine', 4);
  await ensureStacStore(pool, schema);
  azurite = await ensureAzurite();
  storage = createStorage(storageConfigFromEnv());
  await storage.ensureContainer(container);
  await upsertCollection(pool, schema, { ...DEFAULT_COLLECTIONS[0]!, id: 'landcover', title: 'Land cover' });
  const dir = mkdtempSync(join(tmpdir(), 'cm-stac-conf-'));
  // Five real rasters of the kinds users have: UTM DEMs (Int16, Float32 with nodata), an RGB in
  // Web Mercator, a geographic raster near the antimeridian, and a land cover with classes in a sidecar.
  const rasters: Array<[string, string, string[]]> = [
    [
      'dev',
      'dem/a.tif',
      [
        '-outsize',
        '64',
        '64',
        '-bands',
        '1',
        '-ot',
        'Int16',
        '-burn',
        '-1',
        '-a_srs',
        'EPSG:32631',
        '-a_ullr',
        '500000',
        '5000640',
        '500640',
        '5000000',
        '-mo',
        'TIFFTAG_DATETIME=2019:07:01 08:00:00',
      ],
    ],
    [
      'dev',
      'dem/b.tif',
      [
        '-outsize',
        '64',
        '64',
        '-bands',
        '1',
        '-ot',
        'Float32',
        '-burn',
        '12.5',
        '-a_nodata',
        '-9999',
        '-a_srs',
        'EPSG:32633',
        '-a_ullr',
        '300000',
        '5000640',
        '300640',
        '5000000',
      ],
    ],
    [
      'dev',
      'rgb/c.tif',
      [
        '-outsize',
        '64',
        '64',
        '-bands',
        '3',
        '-ot',
        'Byte',
        '-burn',
        '10',
        '-burn',
        '20',
        '-burn',
        '30',
        '-a_srs',
        'EPSG:3857',
        '-a_ullr',
        '1113194',
        '6446275',
        '1119594',
        '6439875',
      ],
    ],
    [
      'cogs',
      'am/d.tif',
      [
        '-outsize',
        '64',
        '64',
        '-bands',
        '1',
        '-ot',
        'UInt16',
        '-burn',
        '500',
        '-a_srs',
        'EPSG:4326',
        '-a_ullr',
        '179.5',
        '-16',
        '180.5',
        '-17',
      ],
    ],
    [
      'landcover',
      'lc/e.tif',
      [
        '-outsize',
        '64',
        '64',
        '-bands',
        '1',
        '-ot',
        'Byte',
        '-burn',
        '2',
        '-a_srs',
        'EPSG:32633',
        '-a_ullr',
        '400000',
        '5000640',
        '400640',
        '5000000',
      ],
    ],
  ];
  for (const [collection, blob, args] of rasters) {
    await storage.uploadFile(container, blob, cog(dir, blob.replaceAll('/', '_'), args));
    if (blob === 'lc/e.tif') {
      const aux = join(dir, 'e.aux.xml');
      writeFileSync(
        aux,
        '<PAMDataset><PAMRasterBand band="1"><CategoryNames><Category></Category><Category>Water</Category><Category>Forest</Category></CategoryNames></PAMRasterBand></PAMDataset>',
      );
      await storage.uploadFile(container, `${blob}.aux.xml`, aux);
    }
    await registerBlobRaster(pool, schema, storage, container, blob, { collection });
  }
  const routes = stacRoutes({ pool, schema, storage });
  const assets = assetRoutes({ storage });
  server = createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://placeholder');
    assets(req, res, url)
      .then(async (handled) => handled || routes(req, res, url))
      .then(
        (handled) => {
          if (!handled) res.writeHead(404).end();
        },
        (err) => res.writeHead(500).end(String(err)),
      );
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  base = `http://127.0.0.1:${typeof address === 'object' && address ? address.port : 0}`;
});

afterAll(async () => {
  await new Promise((r) => server?.close(r));
  await storage?.deleteContainer(container).catch(() => {});
  await azurite?.stop();
  await pool?.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
  await pool?.end();
});

describe('STAC API conformance run', () => {
  it('every document served validates: landing, OpenAPI, conformance, collections, items, search GET and POST', async () => {
    // Landing page: a STAC Catalog with the links STAC API Core and Item Search require.
    const landing = await getJson(`${base}/stac`);
    expect(landing.status).toBe(200);
    expect(validateCatalog(landing.body)).toEqual([]);
    validated.catalog++;
    expectLinks(landing.body, 'landing');
    const rel = (r: string) => landing.body.links.filter((l: Json) => l.rel === r);
    for (const r of ['self', 'root', 'service-desc', 'conformance', 'data', 'search'])
      expect(rel(r).length, r).toBeGreaterThan(0);

    // OpenAPI 3.0 description.
    const api = await getJson(rel('service-desc')[0].href);
    const check = await new Validator().validate(api.body as never);
    expect(check.errors ?? []).toEqual([]);
    expect(check.valid).toBe(true);
    validated.openapi++;

    // Conformance classes.
    const conformance = await getJson(rel('conformance')[0].href);
    expect(conformance.body.conformsTo).toEqual(landing.body.conformsTo);
    for (const c of [
      'https://api.stacspec.org/v1.0.0/core',
      'https://api.stacspec.org/v1.0.0/collections',
      'https://api.stacspec.org/v1.0.0/ogcapi-features',
      'https://api.stacspec.org/v1.0.0/item-search',
    ])
      expect(conformance.body.conformsTo).toContain(c);

    // Collections, each collection, and all the items of each, two per page.
    const collections = await getJson(rel('data')[0].href);
    expectLinks(collections.body, 'collections');
    const ids = collections.body.collections.map((c: Json) => c.id);
    expect(ids).toEqual(['cogs', 'dev', 'geoparquet', 'landcover', 'vectors']);
    const perCollection: Record<string, string[]> = {};
    for (const c of collections.body.collections) {
      expect(validateCollection(c), c.id).toEqual([]);
      const self = c.links.find((l: Json) => l.rel === 'self').href;
      const one = await getJson(self);
      expect(validateCollection(one.body), self).toEqual([]);
      validated.collection += 2;
      const items = one.body.links.find((l: Json) => l.rel === 'items').href;
      perCollection[c.id] = await crawl(`${items}?limit=2`);
      // Every item at its own URL.
      for (const id of perCollection[c.id]!) {
        const item = await getJson(`${self}/items/${encodeURIComponent(id)}`);
        expect(item.type).toBe('application/geo+json');
        expectItem(item.body, `${self}/items/${id}`);
      }
    }
    expect(Object.fromEntries(Object.entries(perCollection).map(([k, v]) => [k, v.length]))).toEqual({
      cogs: 1,
      dev: 3,
      geoparquet: 0,
      landcover: 1,
      vectors: 0,
    });
    // Collections learnt their extent from their items.
    const dev = collections.body.collections.find((c: Json) => c.id === 'dev');
    expect(dev.extent.spatial.bbox[0][0]).toBeCloseTo(3, 3);
    expect(dev.summaries['proj:code']).toEqual(['EPSG:32631', 'EPSG:32633', 'EPSG:3857']);

    // Search over GET and POST, two per page, following next links: every item exactly once.
    const all = Object.values(perCollection).flat().sort();
    expect(all).toHaveLength(5);
    const searchGet = rel('search').find((l: Json) => (l.method ?? 'GET') === 'GET').href;
    expect((await crawl(`${searchGet}?limit=2`)).sort()).toEqual(all);
    expect((await crawl(`${searchGet}?limit=2&bbox=170,-20,180,-10`)).sort()).toEqual(perCollection.cogs);
    const searchPost = rel('search').find((l: Json) => l.method === 'POST').href;
    expect((await crawl(searchPost, { method: 'POST', body: { limit: 2 } })).sort()).toEqual(all);
    expect(
      await crawl(searchPost, {
        method: 'POST',
        body: { limit: 2, collections: ['dev'], datetime: '2019-01-01T00:00:00Z/2019-12-31T23:59:59Z' },
      }),
    ).toEqual(perCollection.dev!.filter((id) => id.includes('dem-a')));

    // The classes of the land cover reached the served item.
    const lc = await getJson(
      `${base}/stac/collections/landcover/items/${encodeURIComponent(perCollection.landcover![0]!)}`,
    );
    expect(lc.body.assets.data['raster:bands'][0]['classification:classes']).toEqual([
      { value: 1, description: 'Water', name: 'water' },
      { value: 2, description: 'Forest', name: 'forest' },
    ]);

    // Every asset has an alternate href through the asset route, which serves the private blob's bytes by range.
    const alternate = lc.body.assets.data.alternate.coremachine.href as string;
    expect(alternate).toBe(`${base}/stac/assets/${container}/lc/e.tif`);
    expect(lc.body.assets.data.href).toBe(storage.blobUrl(container, 'lc/e.tif'));
    expect(lc.body.stac_extensions).toContain('https://stac-extensions.github.io/alternate-assets/v1.2.0/schema.json');
    const head = await fetch(alternate, { headers: { range: 'bytes=0-3' } });
    expect(head.status).toBe(206);
    expect(Buffer.from(await head.arrayBuffer()).toString('latin1')).toBe('II*\u0000');

    expect(validated.catalog).toBe(1);
    expect(validated.openapi).toBe(1);
    expect(validated.collection).toBe(10);
    // 5 items on collection pages, 5 at their own URL, and on four search crawls (5 + 1 + 5 + 1).
    expect(validated.item).toBe(22);
    expect(validated.itemCollection).toBeGreaterThanOrEqual(14);
  });
});
