import { execFile, execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { createPool, type Pool } from '@coremachine/core-machine';
import {
  DEFAULT_COLLECTIONS,
  ensureStacStore,
  registerBlobRaster,
  upsertItems,
  type StacItem,
} from '@coremachine/geo/stac';
import {
  createStorage,
  ensureAzurite,
  storageConfigFromEnv,
  type AzuriteHandle,
  type BlobStorage,
} from '@coremachine/storage';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CONFORMANCE, stacRoutes } from './stac.ts';

const tag = randomBytes(4).toString('hex');
const schema = `stac_api_${tag}`;
const container = `stacapi-${tag}`;
let pool: Pool;
let server: Server;
let base: string;
let storage: BlobStorage;
let azurite: AzuriteHandle;

function item(id: string, lon: number, lat: number, datetime: string, collection = 'dev'): StacItem {
  return {
    type: 'Feature',
    stac_version: '1.0.0',
    stac_extensions: [],
    id,
    collection,
    geometry: {
      type: 'Polygon',
      coordinates: [
        [
          [lon, lat],
          [lon + 1, lat],
          [lon + 1, lat + 1],
          [lon, lat + 1],
          [lon, lat],
        ],
      ],
    },
    bbox: [lon, lat, lon + 1, lat + 1],
    properties: { datetime },
    links: [],
    assets: { features: { href: `/features/collections/${id}`, type: 'application/geo+json', roles: ['data'] } },
  };
}

const get = async (path: string) => {
  const res = await fetch(path.startsWith('http') ? path : `${base}${path}`);
  return { status: res.status, type: res.headers.get('content-type'), body: (await res.json()) as any };
};
const post = async (path: string, body: unknown) => {
  const res = await fetch(`${base}${path}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
  return { status: res.status, body: (await res.json()) as any };
};

beforeAll(async () => {
  pool = createPool(process.env.DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/coremachine', 4);
  await ensureStacStore(pool, schema);
  await upsertItems(pool, schema, [
    item('a', 0, 0, '2020-01-01T00:00:00Z'),
    item('b', 10, 10, '2021-06-01T00:00:00Z'),
    item('c', 20, 20, '2022-01-01T00:00:00Z'),
    item('d', 30, 30, '2023-01-01T00:00:00Z', 'vectors'),
    item('e', 40, 40, '2024-01-01T00:00:00Z'),
  ]);
  const routes = stacRoutes({ pool, schema });
  server = createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://placeholder');
    routes(req, res, url).then(
      (handled) => {
        if (!handled) res.writeHead(404).end();
      },
      (err) => res.writeHead(500).end(String(err)),
    );
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  base = `http://127.0.0.1:${typeof address === 'object' && address ? address.port : 0}`;
  azurite = await ensureAzurite();
  storage = createStorage(storageConfigFromEnv());
});

afterAll(async () => {
  await new Promise((r) => server?.close(r));
  await storage?.deleteContainer(container).catch(() => {});
  await azurite?.stop();
  await pool?.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
  await pool?.end();
});

describe('STAC API', () => {
  it('landing page: conformance classes and absolute links from the Host header', async () => {
    const { status, body } = await get('/stac');
    expect(status).toBe(200);
    expect(body).toMatchObject({
      type: 'Catalog',
      stac_version: '1.0.0',
      id: 'coremachine',
      conformsTo: [...CONFORMANCE],
    });
    const rels = body.links.map((l: any) => `${l.rel} ${l.method ?? ''} ${l.href}`.replace('  ', ' '));
    expect(rels).toContain(`self ${base}/stac`);
    expect(rels).toContain(`conformance ${base}/stac/conformance`);
    expect(rels).toContain(`search GET ${base}/stac/search`);
    expect(rels).toContain(`search POST ${base}/stac/search`);
    expect(body.links.filter((l: any) => l.rel === 'child').map((l: any) => l.href)).toEqual(
      ['cogs', 'dev', 'geoparquet', 'vectors'].map((c) => `${base}/stac/collections/${c}`),
    );
    const proxied = await fetch(`${base}/stac`, {
      headers: { 'x-forwarded-proto': 'https', 'x-forwarded-host': 'geo.example.org' },
    });
    expect(((await proxied.json()) as any).links[0].href).toBe('https://geo.example.org/stac');
    expect((await get('/stac/conformance')).body.conformsTo).toContain('https://api.stacspec.org/v1.0.0/item-search');
  });

  it('collections, one collection, items of a collection, one item', async () => {
    const all = await get('/stac/collections');
    expect(all.body.collections.map((c: any) => c.id)).toEqual(['cogs', 'dev', 'geoparquet', 'vectors']);
    const dev = await get('/stac/collections/dev');
    expect(dev.body.links.find((l: any) => l.rel === 'items').href).toBe(`${base}/stac/collections/dev/items`);
    const items = await get('/stac/collections/dev/items?limit=2');
    expect(items.type).toBe('application/geo+json');
    expect(items.body).toMatchObject({ type: 'FeatureCollection', numberMatched: 4, numberReturned: 2 });
    expect(items.body.features.map((f: any) => f.id)).toEqual(['a', 'b']);
    const next = items.body.links.find((l: any) => l.rel === 'next');
    const page2 = await get(next.href);
    expect(page2.body.features.map((f: any) => f.id)).toEqual(['c', 'e']);
    expect(page2.body.links.find((l: any) => l.rel === 'next')).toBeUndefined();
    const one = await get('/stac/collections/dev/items/b');
    expect(one.body.links.find((l: any) => l.rel === 'self').href).toBe(`${base}/stac/collections/dev/items/b`);
    expect(one.body.assets.features.href).toBe(`${base}/features/collections/b`);
    expect((await get('/stac/collections/dev/items?bbox=9,9,10.5,10.5')).body.features.map((f: any) => f.id)).toEqual([
      'b',
    ]);
    expect(
      (await get('/stac/collections/dev/items?datetime=2021-01-01T00:00:00Z/2022-06-01T00:00:00Z')).body.features.map(
        (f: any) => f.id,
      ),
    ).toEqual(['b', 'c']);
    expect((await get('/stac/collections/nope')).status).toBe(404);
    expect((await get('/stac/collections/dev/items/zzz')).status).toBe(404);
  });

  it('search GET and POST: bbox, intersects, datetime with open ends, ids, collections, paging', async () => {
    const ids = (r: { body: any }) => r.body.features.map((f: any) => f.id);
    expect(ids(await get('/stac/search?bbox=-1,-1,35,35&collections=dev,vectors'))).toEqual(['a', 'b', 'c', 'd']);
    expect(ids(await get('/stac/search?datetime=2022-01-01T00:00:00Z/..'))).toEqual(['c', 'e', 'd']);
    expect(ids(await get('/stac/search?datetime=../2020-06-01T00:00:00Z'))).toEqual(['a']);
    expect(ids(await get('/stac/search?ids=e,d'))).toEqual(['e', 'd']);
    expect(
      ids(
        await get(
          `/stac/search?intersects=${encodeURIComponent(JSON.stringify({ type: 'Point', coordinates: [40.5, 40.5] }))}`,
        ),
      ),
    ).toEqual(['e']);
    expect(ids(await post('/stac/search', { intersects: { type: 'Point', coordinates: [0.5, 0.5] } }))).toEqual(['a']);
    const first = await post('/stac/search', { collections: ['dev'], limit: 3 });
    expect(ids(first)).toEqual(['a', 'b', 'c']);
    const next = first.body.links.find((l: any) => l.rel === 'next');
    expect(next).toMatchObject({ method: 'POST', href: `${base}/stac/search` });
    expect(ids(await post('/stac/search', next.body))).toEqual(['e']);
    const got = await get('/stac/search?limit=2');
    expect(got.body.numberMatched).toBe(5);
    const seen = [...ids(got)];
    let link = got.body.links.find((l: any) => l.rel === 'next');
    while (link) {
      const page = await get(link.href);
      seen.push(...ids(page));
      link = page.body.links.find((l: any) => l.rel === 'next');
    }
    expect(seen).toEqual(['a', 'b', 'c', 'e', 'd']);
  });

  it('400 on bad queries, naming the parameter', async () => {
    const both = await get(
      '/stac/search?bbox=0,0,1,1&intersects=' + encodeURIComponent('{"type":"Point","coordinates":[0,0]}'),
    );
    expect(both.status).toBe(400);
    expect(both.body.description).toMatch(/bbox and intersects/);
    expect(
      (await post('/stac/search', { bbox: [0, 0, 1, 1], intersects: { type: 'Point', coordinates: [0, 0] } })).status,
    ).toBe(400);
    expect((await get('/stac/search?bbox=1,2,3')).body).toMatchObject({
      code: 'InvalidParameterValue',
      description: expect.stringMatching(/bbox/),
    });
    expect((await get('/stac/search?datetime=tomorrow')).body.description).toMatch(/datetime/);
    expect((await get('/stac/search?limit=abc')).body.description).toMatch(/limit/);
    expect((await post('/stac/search', { colections: ['dev'] })).body.description).toMatch(/colections/);
  });

  it('landing page links the OpenAPI 3 description (service-desc), served at /stac/api', async () => {
    const landing = (await get('/stac')).body;
    const desc = landing.links.find((l: any) => l.rel === 'service-desc');
    expect(desc).toMatchObject({ href: `${base}/stac/api`, type: 'application/vnd.oai.openapi+json;version=3.0' });
    const api = await get(desc.href);
    expect(api.status).toBe(200);
    expect(api.type).toBe('application/vnd.oai.openapi+json;version=3.0');
    expect(api.body.openapi).toMatch(/^3\.0\.\d+$/);
    expect(api.body.servers).toEqual([{ url: `${base}/stac` }]);
    expect(Object.keys(api.body.paths)).toEqual(
      expect.arrayContaining([
        '/',
        '/conformance',
        '/collections',
        '/collections/{collectionId}',
        '/collections/{collectionId}/items',
        '/collections/{collectionId}/items/{featureId}',
        '/search',
      ]),
    );
    expect(Object.keys(api.body.paths['/search'])).toEqual(['get', 'post']);
  });

  it('limit above the maximum is clamped (200), below 1 refused (400)', async () => {
    for (const path of ['/stac/search?limit=1000000', '/stac/collections/dev/items?limit=10001']) {
      const page = await get(path);
      expect(page.status).toBe(200);
      expect(page.body.numberReturned).toBe(page.body.numberMatched);
      expect(page.body.links.find((l: any) => l.rel === 'next')).toBeUndefined();
    }
    expect((await post('/stac/search', { limit: 50000 })).status).toBe(200);
    const zero = await get('/stac/search?limit=0');
    expect(zero.status).toBe(400);
    expect(zero.body.description).toMatch(/limit/);
  });

  it('a date-only datetime is a 400 that says RFC 3339 needs a time', async () => {
    for (const res of [
      await get('/stac/search?datetime=2026-12-01'),
      await get('/stac/search?datetime=2020-01-01/2021-01-01'),
      await get('/stac/collections/dev/items?datetime=2020-01-01'),
      await post('/stac/search', { datetime: '2026-12-01' }),
    ]) {
      expect(res.status).toBe(400);
      expect(res.body.code).toBe('InvalidParameterValue');
      expect(res.body.description).toMatch(/RFC 3339 requires a time/);
    }
    const day = await get('/stac/search?datetime=2020-01-01T00:00:00Z/2020-01-01T23:59:59Z');
    expect(day.body.features.map((f: any) => f.id)).toEqual(['a']);
  });

  it('collections report the extent of their items', async () => {
    const dev = (await get('/stac/collections/dev')).body;
    // Items a, b, c, e of dev: 1° squares at (0,0), (10,10), (20,20), (40,40).
    expect(dev.extent).toEqual({
      spatial: { bbox: [[0, 0, 41, 41]] },
      temporal: { interval: [['2020-01-01T00:00:00.000Z', '2024-01-01T00:00:00.000Z']] },
    });
  });

  it('POST /stac/collections creates a validated collection; 409 on an existing id; 400 with schema issues', async () => {
    const created = await post('/stac/collections', { ...DEFAULT_COLLECTIONS[0], id: 'landsat', title: 'Landsat' });
    expect(created.status).toBe(201);
    expect(created.body.links.find((l: any) => l.rel === 'self').href).toBe(`${base}/stac/collections/landsat`);
    expect((await get('/stac/collections/landsat')).body.title).toBe('Landsat');
    expect((await post('/stac/collections', { ...DEFAULT_COLLECTIONS[0], id: 'landsat' })).status).toBe(409);
    const invalid = await post('/stac/collections', {
      type: 'Collection',
      stac_version: '1.0.0',
      id: 'broken',
      links: [],
    });
    expect(invalid.status).toBe(400);
    expect(invalid.body.code).toBe('STAC_INVALID');
    expect(invalid.body.issues.map((i: any) => i.message).join()).toMatch(/description|license|extent/);
  });

  it('GDAL STACIT opens a mosaic of catalogued COGs straight from /stac/search', async () => {
    await storage.ensureContainer(container);
    await storage.setPublicRead(container, true);
    const dir = mkdtempSync(join(tmpdir(), 'cm-stacit-'));
    // Two adjacent 256 x 256 COGs of 10 m in UTM 31N, values 50 and 150. t1 is uploaded after t0
    // was opened through /vsiaz/: regression test for GDAL's stale cached listing of tiles/.
    for (const [i, value] of [
      [0, 50],
      [1, 150],
    ] as const) {
      const src = join(dir, `t${i}.src.tif`);
      const cog = join(dir, `t${i}.tif`);
      execFileSync('gdal_create', [
        '-of',
        'GTiff',
        '-outsize',
        '256',
        '256',
        '-bands',
        '1',
        '-ot',
        'Byte',
        '-burn',
        String(value),
        '-a_srs',
        'EPSG:32631',
        '-a_ullr',
        String(500000 + i * 2560),
        '5000000',
        String(502560 + i * 2560),
        '4997440',
        src,
      ]);
      execFileSync('gdal_translate', ['-q', '-of', 'COG', src, cog]);
      await storage.uploadFile(container, `tiles/t${i}.tif`, cog);
      await registerBlobRaster(pool, schema, storage, container, `tiles/t${i}.tif`, { collection: 'cogs' });
    }
    const run = promisify(execFile);
    const env = { ...process.env, GDAL_DISABLE_READDIR_ON_OPEN: 'EMPTY_DIR', CPL_VSIL_CURL_ALLOWED_EXTENSIONS: '.tif' };
    // GDAL 3.6's STACIT wants proj:epsg (projection v1.1), which projection v2.0.0 replaced by
    // proj:code: with the items as stored it skips every asset.
    const plain = await run('gdalinfo', ['--debug', 'on', `STACIT:"${base}/stac/search?collections=cogs"`], {
      env,
    }).catch((e) => e);
    expect(plain.stderr).toMatch(/Skipping asset data that lacks the 'proj:epsg' member|No compatible asset found/);
    // Asked for the v1.1 rendering, it opens the mosaic and reads both COGs over HTTP.
    const search = `${base}/stac/search?collections=cogs&projection=v1.1`;
    const { stdout } = await run('gdalinfo', ['-json', '-stats', `STACIT:"${search}":asset=data`], { env }).catch(
      async (err) => {
        const debug = await run('gdalinfo', ['--debug', 'on', `STACIT:"${search}":asset=data`], { env }).catch(
          (e) => e,
        );
        throw new Error(`${err.message}\n${debug.stderr}`);
      },
    );
    const info = JSON.parse(stdout);
    // STACIT builds a VRT mosaic of the assets it found.
    expect(info.driverShortName).toBe('VRT');
    expect(JSON.stringify(info.files ?? [])).not.toContain('?');
    expect(info.size).toEqual([512, 256]);
    expect(info.coordinateSystem.wkt).toMatch(/UTM zone 31N/);
    expect(info.geoTransform).toEqual([500000, 10, 0, 5000000, 0, -10]);
    const stats = info.bands[0];
    expect([stats.minimum, stats.maximum, stats.mean]).toEqual([50, 150, 100]);
  });
});
