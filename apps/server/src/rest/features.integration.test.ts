import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { promisify } from 'node:util';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { featuresRoutes } from './features.ts';

const run = promisify(execFile);
const DATABASE_URL = process.env['DATABASE_URL'] ?? 'postgres://postgres@127.0.0.1:5432/coremachine';
const schema = `ft_${randomBytes(4).toString('hex')}`;
let pool: pg.Pool;
let server: http.Server;
let base: string;

beforeAll(async () => {
  pool = new pg.Pool({ connectionString: DATABASE_URL, max: 4 });
  // A table shaped like ingest_vector's output: fid key, attributes, geom in EPSG:4326.
  await pool.query(`create schema "${schema}";
    create table "${schema}".cities (fid bigint primary key, name text, pop integer, geom geometry(Point, 4326) not null);
    insert into "${schema}".cities select i, 'city ' || i || ' é', i * 100, st_setsrid(st_makepoint(i, i / 2.0), 4326) from generate_series(1, 25) i;
    create table "${schema}".no_geom (id int primary key)`);
  const features = featuresRoutes({ pool, schema });
  server = http.createServer((req, res) => {
    const url = new URL(req.url ?? '/', `http://${req.headers.host}`);
    features(req, res, url).then(
      (done) => {
        if (!done) {
          res.writeHead(404);
          res.end();
        }
      },
      () => {
        res.writeHead(500);
        res.end();
      },
    );
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}/features`;
});

afterAll(async () => {
  server?.close();
  await pool?.query(`drop schema if exists "${schema}" cascade`);
  await pool?.end();
});

const get = async (path: string) => {
  const r = await fetch(`${base}${path}`);
  return { status: r.status, type: r.headers.get('content-type'), body: (await r.json()) as any };
};

describe('OGC API - Features', () => {
  it('serves landing, conformance, OpenAPI and collections with absolute links', async () => {
    const landing = await get('');
    expect(landing.body.links.map((l: any) => [l.rel, l.href])).toEqual([
      ['self', base],
      ['service-desc', `${base}/api`],
      ['conformance', `${base}/conformance`],
      ['data', `${base}/collections`],
    ]);
    expect((await get('/conformance')).body.conformsTo).toContain(
      'http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/geojson',
    );
    const api = await get('/api');
    expect(api.body.openapi).toBe('3.0.3');
    expect(Object.keys(api.body.paths)).toContain('/collections/{collectionId}/items');
    const cols = await get('/collections');
    expect(cols.body.collections.map((c: any) => c.id)).toEqual(['cities']);
    expect(cols.body.collections[0].extent.spatial.bbox[0]).toEqual([1, 0.5, 25, 12.5]);
    expect((await get('/collections/cities')).body.links[1].href).toBe(`${base}/collections/cities/items`);
    expect((await get('/collections/nope')).status).toBe(404);
    expect((await get('/collections/no_geom')).status).toBe(404);
  });

  it('pages items with limit, next links, numberMatched/numberReturned, and filters by bbox', async () => {
    const p1 = await get('/collections/cities/items?limit=10');
    expect(p1.type).toBe('application/geo+json');
    expect(p1.body).toMatchObject({ type: 'FeatureCollection', numberMatched: 25, numberReturned: 10 });
    expect(p1.body.features[0]).toEqual({
      type: 'Feature',
      id: 1,
      geometry: { type: 'Point', coordinates: [1, 0.5] },
      properties: { name: 'city 1 é', pop: 100 },
    });
    const next = p1.body.links.find((l: any) => l.rel === 'next').href as string;
    expect(next).toBe(`${base}/collections/cities/items?limit=10&offset=10`);
    const p3 = (await (await fetch(`${base}/collections/cities/items?limit=10&offset=20`)).json()) as any;
    expect(p3.numberReturned).toBe(5);
    expect(p3.links.some((l: any) => l.rel === 'next')).toBe(false);
    const boxed = await get('/collections/cities/items?bbox=2.5,0,5.5,10');
    expect(boxed.body.features.map((f: any) => f.id)).toEqual([3, 4, 5]);
    expect(boxed.body.numberMatched).toBe(3);
    expect((await get('/collections/cities/items?limit=abc')).status).toBe(400);
    expect((await get('/collections/cities/items?bbox=1,2,3')).body.description).toMatch(/bbox/);
    const one = await get('/collections/cities/items/7');
    expect(one.body).toMatchObject({ id: 7, properties: { name: 'city 7 é', pop: 700 } });
    expect((await get('/collections/cities/items/999')).status).toBe(404);
  });

  it("is read by GDAL's OAPIF driver", async () => {
    const { stdout } = await run('ogrinfo', ['-ro', '-al', '-so', `OAPIF:${base}`]);
    expect(stdout).toMatch(/Layer name: cities/);
    expect(stdout).toMatch(/Feature Count: 25/);
    const full = await run('ogrinfo', ['-ro', `OAPIF:${base}`, 'cities', '-where', 'pop = 2300']);
    expect(full.stdout).toMatch(/name \(String\) = city 23 é/);
    expect(full.stdout).toMatch(/OGRFeature\(cities\):23\n.*\n.*\n {2}POINT \(23.0 11.5\)/);
  });
});
