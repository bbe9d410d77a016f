import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { promisify } from 'node:util';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { factsComment } from '@coremachine/geo/vector';
import { featuresRoutes } from './features.ts';

const run = promisify(execFile);
const DATABASE_URL = process.env['DATABASE_URL'] ?? 'postgres://postgres@127.0.0.1:5432/coremachine';
const schema = `ft_${randomBytes(4).toString('hex')}`;
const schema2 = `${schema}_b`;
let pool: pg.Pool;
let server: http.Server;
let base: string;

beforeAll(async () => {
  pool = new pg.Pool({ connectionString: DATABASE_URL, max: 4 });
  // A table shaped like ingest_vector's output: fid key, attributes, geom in EPSG:4326.
  await pool.query(`create schema "${schema}"; create schema "${schema2}";
    create table "${schema}".cities (fid bigint primary key, name text, pop integer, geom geometry(Point, 4326) not null);
    insert into "${schema}".cities select i, 'city ' || i || ' é', i * 100, st_setsrid(st_makepoint(i, i / 2.0), 4326) from generate_series(1, 25) i;
    create table "${schema}".no_geom (id int primary key);
    -- A world of 10° cells: the antimeridian bbox must match what PostGIS says.
    create table "${schema}".world (fid integer primary key, name text, geom geometry(MultiPolygon, 4326) not null);
    insert into "${schema}".world select row_number() over (), 'cell ' || x || ' ' || y, st_multi(st_makeenvelope(x, y, x + 10, y + 10, 4326))
      from generate_series(-180, 170, 10) x, generate_series(-90, 80, 10) y;
    -- Events: a time column (and a text key), every column type a GeoPackage keeps.
    create table "${schema}".events (code text primary key, title text, n integer, big bigint, area double precision,
      flag boolean, day date, seen timestamptz, geom geometry(Point, 4326) not null);
    insert into "${schema}".events select 'e' || i, 'event ' || i, i, i * 10000000000, i / 4.0, i % 2 = 0,
      date '2024-01-01' + i, timestamptz '2024-01-01T12:00:00Z' + i * interval '1 day', st_setsrid(st_makepoint(i, -i), 4326)
      from generate_series(1, 30) i;
    -- Many points, with facts stored as ingest_vector stores them (rows deliberately not the true count).
    create table "${schema}".many (fid bigint primary key, v integer, geom geometry(Point, 4326) not null);
    insert into "${schema}".many select i, i, st_setsrid(st_makepoint((i % 360) - 179.5, ((i / 360) % 170) - 84.5), 4326) from generate_series(1, 12000) i;
    comment on table "${schema}".many is '${factsComment({ job: 'j1', rows: 11999, bbox: [-179.5, -84.5, 179.5, -51.5], loaded_at: '2024-01-01T00:00:00Z' })}';
    -- A loader's working table, never published; a table of the same name in the second schema.
    create table "${schema}".cm_stage_abc (fid bigint primary key, geom geometry(Point, 4326));
    create table "${schema2}".cities (fid bigint primary key, name text, geom geometry(Point, 4326) not null);
    insert into "${schema2}".cities values (1, 'other', st_setsrid(st_makepoint(0, 0), 4326))`);
  const features = featuresRoutes({ pool, schemas: [schema, schema2] });
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
  await pool?.query(`drop schema if exists "${schema}" cascade; drop schema if exists "${schema2}" cascade`);
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
    expect(cols.body.collections.map((c: any) => c.id)).toEqual([
      'cities',
      'events',
      'many',
      'world',
      `${schema2}.cities`,
    ]);
    expect(cols.body.collections[0].extent.spatial.bbox[0]).toEqual([1, 0.5, 25, 12.5]);
    expect((await get('/collections/cities')).body.links[1].href).toBe(`${base}/collections/cities/items`);
    expect((await get('/collections/nope')).status).toBe(404);
    expect((await get('/collections/no_geom')).status).toBe(404);
    expect((await get('/collections/cm_stage_abc')).status).toBe(404);
    const other = await get(`/collections/${schema2}.cities/items`);
    expect(other.body.features.map((f: any) => f.properties.name)).toEqual(['other']);
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
    // Keyset paging: the next page starts after the last key of this one.
    expect(next).toBe(`${base}/collections/cities/items?limit=10&after=10`);
    const p2 = (await (await fetch(next)).json()) as any;
    expect(p2.features.map((f: any) => f.id)).toEqual([11, 12, 13, 14, 15, 16, 17, 18, 19, 20]);
    const last = p2.links.find((l: any) => l.rel === 'next').href as string;
    expect(last).toBe(`${base}/collections/cities/items?limit=10&after=20`);
    const p3 = (await (await fetch(last)).json()) as any;
    expect(p3.features.map((f: any) => f.id)).toEqual([21, 22, 23, 24, 25]);
    expect(p3.links.some((l: any) => l.rel === 'next')).toBe(false);
    // offset is still accepted (and gives prev links); a full last page has no next link.
    const byOffset = (await (await fetch(`${base}/collections/cities/items?limit=5&offset=20`)).json()) as any;
    expect(byOffset.features.map((f: any) => f.id)).toEqual([21, 22, 23, 24, 25]);
    expect(byOffset.links.map((l: any) => l.rel)).toEqual(['self', 'collection', 'prev']);
    expect((await get('/collections/cities/items?after=abc')).status).toBe(400);
    // A text key pages by its own order.
    const ev = await get('/collections/events/items?limit=3&after=e28');
    expect(ev.body.features.map((f: any) => f.id)).toEqual(['e29', 'e3', 'e30']);
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

  it('antimeridian bbox matches what PostGIS says; south above north is a 400', async () => {
    const env = (w: number, e: number) => `st_makeenvelope(${w}, -20, ${e}, 20, 4326)`;
    const {
      rows: [ref],
    } = await pool.query(
      `select count(*)::int n from "${schema}".world where st_intersects(geom, ${env(170, 180)}) or st_intersects(geom, ${env(-180, -170)})`,
    );
    const r = await get('/collections/world/items?bbox=170,-20,-170,20&limit=1000');
    expect(r.status).toBe(200);
    expect(r.body.numberMatched).toBe(ref.n);
    expect(r.body.numberReturned).toBe(ref.n);
    // Cells 160..170, 170..180, -180..-170 and -170..-160 (touching counts), latitudes -30..30.
    expect(ref.n).toBe(24);
    const names = new Set(r.body.features.map((f: any) => f.properties.name.split(' ')[1]));
    expect([...names].sort()).toEqual(['-170', '-180', '160', '170']);
    const bad = await get('/collections/world/items?bbox=0,20,10,-20');
    expect(bad.status).toBe(400);
    expect(bad.body.description).toMatch(/south 20 is above north -20/);
    expect((await get('/collections/world/items?bbox=0,0,200,10')).status).toBe(400);
  });

  it('refuses unknown query parameters, and datetime on a collection without a time column', async () => {
    for (const q of [
      'foo=bar',
      'bbox-crs=http://www.opengis.net/def/crs/EPSG/0/4326',
      'limit=5&LIMIT=6',
      'limit=1&limit=2',
    ]) {
      const r = await get(`/collections/cities/items?${q}`);
      expect(r.status, q).toBe(400);
    }
    expect((await get('/collections/cities/items?foo=bar')).body.description).toMatch(/Unknown query parameter "foo"/);
    expect((await get('/collections?foo=1')).status).toBe(400);
    expect((await get('/collections/cities/items?f=json&limit=2')).status).toBe(200);
    const dt = await get('/collections/cities/items?datetime=2024-01-01T00:00:00Z');
    expect(dt.status).toBe(400);
    expect(dt.body.description).toMatch(/no time column/);
  });

  it('filters by datetime on the time column, with counts', async () => {
    const doc = await get('/collections/events');
    expect(doc.body.time_column).toBe('day');
    const interval = await get(
      '/collections/events/items?datetime=2024-01-05T00:00:00Z/2024-01-10T00:00:00Z&limit=100',
    );
    expect(interval.body.numberMatched).toBe(6);
    expect(interval.body.features.map((f: any) => f.id)).toEqual(['e4', 'e5', 'e6', 'e7', 'e8', 'e9']);
    expect((await get('/collections/events/items?datetime=../2024-01-03T00:00:00Z')).body.numberMatched).toBe(2);
    expect((await get('/collections/events/items?datetime=2024-01-29T00:00:00Z/..')).body.numberMatched).toBe(3);
    const one = await get('/collections/events/items?datetime=2024-01-11T00:00:00Z');
    expect(one.body.numberMatched, JSON.stringify(one.body)).toBe(1);
    expect((await get('/collections/events/items?datetime=yesterday')).status).toBe(400);
    const next = (await get('/collections/events/items?datetime=2024-01-05T00:00:00Z/..&limit=5')).body.links.find(
      (l: any) => l.rel === 'next',
    ).href as string;
    expect(new URL(next).searchParams.get('datetime')).toBe('2024-01-05T00:00:00Z/..');
  });

  it('OpenAPI bbox is one comma-separated value, as the server reads it', async () => {
    const api = await get('/api');
    const bbox = api.body.paths['/collections/{collectionId}/items'].get.parameters.find((p: any) => p.name === 'bbox');
    expect(bbox).toMatchObject({ in: 'query', style: 'form', explode: false, schema: { type: 'array', minItems: 4 } });
    // Every parameter the items route accepts is declared (a generated client can follow next links).
    const declared = api.body.paths['/collections/{collectionId}/items'].get.parameters.map((p: any) => p.name);
    expect(declared.sort()).toEqual(['after', 'bbox', 'collectionId', 'datetime', 'limit', 'offset']);
    // What a generated client sends for [2.5, 0, 5.5, 10] with style form, explode false.
    const form = await get(`/collections/cities/items?bbox=${encodeURIComponent([2.5, 0, 5.5, 10].join(','))}`);
    expect(form.body.numberMatched).toBe(3);
  });

  it('numberMatched from the stored row count; filtered, given when the page holds the whole result', async () => {
    const all = await get('/collections/many/items?limit=2');
    expect(all.body.numberMatched).toBe(11999);
    const doc = await get('/collections/many');
    expect(doc.body.extent.spatial.bbox[0]).toEqual([-179.5, -84.5, 179.5, -51.5]);
    const wide = await get('/collections/many/items?bbox=-180,-90,180,90&limit=10');
    expect(wide.body.numberMatched).toBeUndefined();
    expect(wide.body.numberReturned).toBe(10);
    expect(wide.body.links.some((l: any) => l.rel === 'next')).toBe(true);
    const {
      rows: [ref],
    } = await pool.query(
      `select count(*)::int n from "${schema}".many where st_intersects(geom, st_makeenvelope(-180, -90, -170, -80, 4326))`,
    );
    expect(ref.n).toBeGreaterThan(10);
    const narrow = await get('/collections/many/items?bbox=-180,-90,-170,-80&limit=100');
    expect(narrow.body.numberMatched).toBe(ref.n);
    expect(narrow.body.links.some((l: any) => l.rel === 'next')).toBe(false);
    // A page of it: no count runs, numberMatched is left out; the pages by next links add up.
    let url: string | undefined = `${base}/collections/many/items?bbox=-180,-90,-170,-80&limit=10`;
    const seen: number[] = [];
    while (url) {
      const page = (await (await fetch(url)).json()) as any;
      expect(page.numberMatched).toBeUndefined();
      seen.push(...page.features.map((f: any) => f.id));
      url = page.links.find((l: any) => l.rel === 'next')?.href;
    }
    expect(seen.length).toBe(ref.n);
    expect(new Set(seen).size).toBe(ref.n);
    // Items by primary key, in its own type: a text key, an integer key, ids that cannot be keys.
    expect((await get('/collections/events/items/e7')).body).toMatchObject({ id: 'e7', properties: { n: 7 } });
    expect((await get('/collections/many/items/11999')).body.properties.v).toBe(11999);
    expect((await get('/collections/many/items/abc')).status).toBe(404);
    expect((await get('/collections/many/items/99999999999999999999')).status).toBe(404);
  });

  it('a table replaced as ingest_vector replaces it is served at once (no stale catalog)', async () => {
    const t = `"${schema}".swapped`;
    const facts = (rows: number, job: string) =>
      factsComment({ job, rows, bbox: [0, 0, 1, 1], loaded_at: '2024-01-01T00:00:00Z' });
    await pool.query(`create table ${t} (fid bigint primary key, name text, geom geometry(Point, 4326) not null);
      insert into ${t} select i, 'old ' || i, st_setsrid(st_makepoint(0, 0), 4326) from generate_series(1, 3) i;
      comment on table ${t} is '${facts(3, 'j1')}'`);
    const before = await get('/collections/swapped/items');
    expect(before.body.numberMatched).toBe(3);
    expect(before.body.features[0].properties).toEqual({ name: 'old 1' });
    expect((await get('/collections/swapped/items/1')).body.properties).toEqual({ name: 'old 1' });
    // The swap: a new table (another column, other rows) renamed into place in one transaction.
    await pool.query(`begin;
      create table "${schema}".cm_stage_new (fid bigint primary key, name text, extra integer, geom geometry(Point, 4326) not null);
      insert into "${schema}".cm_stage_new select i, 'new ' || i, i * 7, st_setsrid(st_makepoint(0.5, 0.5), 4326) from generate_series(1, 5) i;
      drop table ${t}; alter table "${schema}".cm_stage_new rename to swapped;
      comment on table ${t} is '${facts(5, 'j2')}'; commit`);
    const after = await get('/collections/swapped/items');
    expect(after.body.numberMatched).toBe(5);
    expect(after.body.features.map((f: any) => f.properties)).toEqual(
      [1, 2, 3, 4, 5].map((i) => ({ name: `new ${i}`, extra: i * 7 })),
    );
    expect((await get('/collections/swapped/items/5')).body.properties).toEqual({ name: 'new 5', extra: 35 });
    // Facts rewritten in place (same table): the new count is served.
    await pool.query(`comment on table ${t} is '${facts(4, 'j3')}'`);
    expect((await get('/collections/swapped/items')).body.numberMatched).toBe(4);
    await pool.query(`drop table ${t}`);
    expect((await get('/collections/swapped/items')).status).toBe(404);
  });

  it('queryables list the properties in table order with types; a GDAL copy to GeoPackage keeps them', async () => {
    const q = await get('/collections/events/queryables');
    expect(q.type).toBe('application/schema+json');
    expect(
      Object.entries(q.body.properties).map(([k, v]: [string, any]) => [k, v.type ?? null, v.format ?? null]),
    ).toEqual([
      ['geom', null, 'geometry-point'],
      ['title', 'string', null],
      ['n', 'integer', null],
      ['big', 'integer', 'int64'],
      ['area', 'number', null],
      ['flag', 'boolean', null],
      ['day', 'string', 'date'],
      ['seen', 'string', 'date-time'],
    ]);
    const dir = mkdtempSync(join(tmpdir(), 'cm-oapif-'));
    try {
      const out = join(dir, 'events.gpkg');
      await run('ogr2ogr', ['-f', 'GPKG', out, `OAPIF:${base}`, 'events']);
      const { stdout } = await run('ogrinfo', ['-so', '-al', out]);
      const fields = [...stdout.matchAll(/^(\w+): ([\w()]+) \(/gm)].map((m) => `${m[1]}:${m[2]}`);
      expect(fields).toEqual([
        'id:String',
        'title:String',
        'n:Integer',
        'big:Integer64',
        'area:Real',
        'flag:Integer(Boolean)',
        'day:Date',
        'seen:DateTime',
      ]);
      expect(stdout).toMatch(/Feature Count: 30/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('a page is one statement returning one row: the features as one JSON text, their count and last key', async () => {
    // A route on a pool that records what each statement returned.
    const results: { rows: number; fields: string[] }[] = [];
    const recording = new Proxy(pool, {
      get(target, prop, receiver) {
        if (prop !== 'query') return Reflect.get(target, prop, receiver) as unknown;
        return async (q: string | pg.QueryConfig, values?: unknown[]) => {
          const r = typeof q === 'string' ? await target.query(q, values) : await target.query(q);
          results.push({ rows: r.rowCount ?? 0, fields: r.fields.map((f) => f.name) });
          return r;
        };
      },
    });
    const route = featuresRoutes({ pool: recording, schemas: [schema, schema2] });
    const local = http.createServer((req, res) => void route(req, res, new URL(req.url ?? '/', 'http://x')));
    await new Promise<void>((r) => local.listen(0, '127.0.0.1', r));
    const at = `http://127.0.0.1:${(local.address() as AddressInfo).port}/features/collections`;
    try {
      await fetch(`${at}/many/items?limit=1`); // the catalog is read
      for (const q of ['limit=100', 'limit=100&after=500', 'limit=50&offset=3', 'limit=100&bbox=-180,-90,-170,-80']) {
        results.length = 0;
        const text = await (await fetch(`${at}/many/items?${q}`)).text();
        expect(results).toEqual([{ rows: 1, fields: ['f', 'n', 'k'] }]);
        const page = JSON.parse(text) as any;
        expect(page.numberReturned).toBe(page.features.length);
        expect(page.features.length).toBeGreaterThan(10);
      }
      // The features are what PostgreSQL selects, in key order; the next link after the last one.
      const page = (await (await fetch(`${at}/many/items?limit=100&after=500`)).json()) as any;
      const { rows } = await pool.query(
        `select fid::int, v, st_x(geom) x, st_y(geom) y from "${schema}".many where fid > 500 order by fid limit 100`,
      );
      expect(page.features).toEqual(
        rows.map((r) => ({
          type: 'Feature',
          id: r.fid,
          geometry: { type: 'Point', coordinates: [r.x, r.y] },
          properties: { v: r.v },
        })),
      );
      expect(page.links.find((l: any) => l.rel === 'next').href).toMatch(/[?&]after=600$/);
    } finally {
      local.close();
    }
  });

  it("serves vector tiles made by PostGIS, with a TileJSON, read back by GDAL's MVT driver", async () => {
    const tj = await get('/collections/world/tiles/WebMercatorQuad');
    expect(tj.body).toMatchObject({ tilejson: '3.0.0', vector_layers: [{ id: 'world', fields: { name: 'String' } }] });
    expect(tj.body.tiles[0]).toBe(`${base}/collections/world/tiles/WebMercatorQuad/{z}/{x}/{y}`);
    // Tile 2/3/1: longitudes 90..180, latitudes 0..66.5.
    const r = await fetch(`${base}/collections/world/tiles/WebMercatorQuad/2/3/1`);
    expect(r.status).toBe(200);
    expect(r.headers.get('content-type')).toBe('application/vnd.mapbox-vector-tile');
    const dir = mkdtempSync(join(tmpdir(), 'cm-mvt-'));
    try {
      const file = join(dir, 'tile.mvt');
      writeFileSync(file, Buffer.from(await r.arrayBuffer()));
      const { stdout } = await run('ogrinfo', [
        '-ro',
        '-al',
        '-q',
        '-oo',
        'CLIP=NO',
        '-oo',
        'Z=2',
        '-oo',
        'X=3',
        '-oo',
        'Y=1',
        file,
      ]);
      const ids = [...stdout.matchAll(/mvt_id \(Integer64\) = (\d+)/g)].map((m) => Number(m[1])).sort((x, y) => x - y);
      // The features of the tile as PostGIS clips them (64-pixel buffer; those clipped to nothing left out).
      const { rows } = await pool.query<{ fid: number }>(
        `select fid from "${schema}".world
          where st_asmvtgeom(st_transform(geom, 3857), st_tileenvelope(2, 3, 1), 4096, 64, true) is not null order by fid`,
      );
      expect(ids.length).toBeGreaterThan(40);
      expect(ids).toEqual(rows.map((x) => x.fid));
      expect(stdout).toMatch(/name \(String\) = cell 170 10/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
    expect((await get('/collections/world/tiles/WebMercatorQuad/2/4/1')).status).toBe(400);
  });
});
