import { randomBytes } from 'node:crypto';
import { basename } from 'node:path';
import { execFileSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import pg from 'pg';
import { createStorage, storageConfigFromEnv } from '@coremachine/storage';
import { createTestMachine, DATABASE_URL, type TestMachine } from '@coremachine/test-kit';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import ingestVector from '../src/index.ts';
import { makeFixtures, ogr2ogrReference, type Fixtures } from './fixtures.ts';

const storage = createStorage(storageConfigFromEnv());
const prefix = 'in';
// A container of our own: other packages' tests share Azurite and may drop `bronze`.
const container = `vt-${randomBytes(4).toString('hex')}`;
const vschema = `vt_${randomBytes(4).toString('hex')}`;
const refSchema = `${vschema}_ref`;
let fx: Fixtures;
let tm: TestMachine;
let pool: pg.Pool;

async function upload(name: string): Promise<string> {
  const blob = `${prefix}/${basename(name)}`;
  await storage.uploadFile(container, blob, fx.path(name));
  return blob;
}

async function ingest(params: Record<string, unknown>) {
  const job = await tm.submitAndWait(
    'ingest_vector',
    { schema: vschema, container_name: container, ...params },
    { timeoutMs: 90_000 },
  );
  return job;
}

interface TableFacts {
  n: number;
  extent: number[];
}
async function facts(schema: string, table: string): Promise<TableFacts> {
  const { rows } = await pool.query(`select n, st_xmin(e) x0, st_ymin(e) y0, st_xmax(e) x1, st_ymax(e) y1
    from (select count(*)::int n, st_extent(geom)::box3d e from "${schema}"."${table}" where geom is not null and not st_isempty(geom)) s`);
  const r = rows[0];
  return { n: r.n, extent: [r.x0, r.y0, r.x1, r.y1] };
}

/** Ingests a fixture and checks row count and extent against ogr2ogr on the same file. */
async function ingestAndCompare(
  file: string,
  params: Record<string, unknown> = {},
  ogrArgs: string[] = [],
  ogrSource?: string,
) {
  const table = `t_${basename(file).replace(/\W/g, '_').toLowerCase()}_${randomBytes(2).toString('hex')}`;
  const blob = await upload(file);
  const job = await ingest({ blob_name: blob, table_name: table, ...params });
  expect(job.error, JSON.stringify(job.error)).toBeNull();
  expect(job.status).toBe('completed');
  ogr2ogrReference(ogrSource ?? fx.path(file), refSchema, table, ogrArgs);
  const ours = await facts(vschema, table);
  const ref = await facts(refSchema, table);
  expect(ours.n).toBe(ref.n);
  for (let i = 0; i < 4; i++) expect(ours.extent[i]).toBeCloseTo(ref.extent[i]!, 6);
  return { job, table, result: job.result as any, ours };
}

beforeAll(async () => {
  fx = makeFixtures();
  pool = new pg.Pool({ connectionString: DATABASE_URL, max: 3 });
  await pool.query(`create schema if not exists "${refSchema}"`);
  await storage.ensureContainer(container);
  tm = await createTestMachine({ plugins: [ingestVector], services: { vector: { schemas: [vschema] } } });
});

afterAll(async () => {
  await tm?.close();
  await pool?.query(`drop schema if exists "${vschema}" cascade; drop schema if exists "${refSchema}" cascade`);
  await pool?.end();
  await storage.deleteContainer(container).catch(() => {});
  fx?.cleanup();
});

describe('ingest_vector: formats, compared with ogr2ogr -nlt PROMOTE_TO_MULTI -t_srs EPSG:4326', () => {
  it('GeoJSON with mixed Polygon/MultiPolygon, a null and an invalid geometry, non-ASCII attributes', async () => {
    const { result, table } = await ingestAndCompare('mixed.geojson');
    expect(result).toMatchObject({
      features_read: 6,
      features_written: 5,
      features_skipped: 1,
      skipped_reasons: { null_geometry: 1 },
      features_repaired: 1,
      chunks: 1,
      geometry_column_type: 'MultiPolygon',
      geometry_types: { MULTIPOLYGON: 5 },
      source_crs: 'EPSG:4326',
      crs_assumed: false,
      table: `${vschema}.${table}`,
    });
    expect(result.bbox[0]).toBeCloseTo(-46.7, 9);
    expect(result.bbox[3]).toBeCloseTo(54.85, 9);
    expect(result.columns.map((c: any) => [c.name, c.type])).toEqual([
      ['name_full', 'text'],
      ['surface_m2', 'double precision'],
      ['code', 'bigint'],
      ['fid_2', 'text'],
      ['day', 'date'],
      ['seen', 'timestamptz'],
    ]);
    const { rows } = await pool.query(
      `select fid, name_full, code, day::text, seen, st_isvalid(geom) v from "${vschema}"."${table}" order by fid`,
    );
    expect(rows.map((r) => r.name_full)).toEqual(['Zürich', '東京', 'Ærøskøbing', 'São Paulo', 'bow\ttie "\\"']);
    expect(rows[0]).toMatchObject({ fid: 1, code: 9007199254740000, day: '2024-03-01' });
    expect((rows[0].seen as Date).toISOString()).toBe('2024-03-01T10:20:30.000Z');
    expect(rows.every((r) => r.v)).toBe(true);
    const idx = await pool.query(`select indexdef from pg_indexes where schemaname = $1 and tablename = $2`, [
      vschema,
      table,
    ]);
    expect(idx.rows.map((r) => r.indexdef).join(' ')).toMatch(/USING gist \(geom\)/);
  });

  it('zipped shapefile in CP1252 with a .cpg, and without it plus an encoding override', async () => {
    const a = await ingestAndCompare('parcels.zip', {}, [], `/vsizip/${fx.path('parcels.zip')}`);
    const b = await ingestAndCompare(
      'parcels_nocpg.zip',
      { encoding: 'CP1252' },
      ['-oo', 'ENCODING=CP1252'],
      `/vsizip/${fx.path('parcels_nocpg.zip')}`,
    );
    for (const t of [a.table, b.table]) {
      const { rows } = await pool.query(`select name_full from "${vschema}"."${t}" order by fid`);
      // 東京 has no CP1252 form (GDAL could not write it); the CP1252 names survive the round trip.
      expect(rows.map((r) => r.name_full)).toEqual(['Zürich', null, 'Ærøskøbing', 'São Paulo', 'bow\ttie "\\"']);
    }
  });

  it('GeoPackage in a projected CRS (UTM 33N) is reprojected to EPSG:4326', async () => {
    const { result } = await ingestAndCompare('projected.gpkg', { chunk_size: 1000 });
    expect(result).toMatchObject({
      features_read: 2500,
      features_written: 2500,
      chunks: 3,
      source_crs: 'EPSG:32633',
      geometry_column_type: 'Point',
    });
    expect(result.bbox[0]).toBeCloseTo(-10, 6);
    expect(result.bbox[1]).toBeCloseTo(40, 6);
    expect(result.bbox[2]).toBeCloseTo(-9.01, 6);
    expect(result.bbox[3]).toBeCloseTo(40.24, 6);
  });

  it('multi-layer GeoPackage: a layer is required, and the named one is loaded', async () => {
    const blob = await upload('multi.gpkg');
    const failed = await ingest({ blob_name: blob, table_name: 'multi_nolayer' });
    expect(failed.status).toBe('failed');
    expect(failed.error).toMatchObject({ code: 'LAYER_REQUIRED' });
    expect(failed.error?.message).toContain('cities, zones');
    const t = (await tm.tasks(failed.id))[0]!;
    expect(t.attempts).toBe(1);
    await ingestAndCompare('multi.gpkg', { layer: 'zones' }, ['zones']);
  });

  it('CSV with a WKT column and CSV with lat/lon columns (named, and auto-detected)', async () => {
    const wkt = await ingestAndCompare('wkt.csv', { wkt_column: 'wkt' }, [
      '-oo',
      'GEOM_POSSIBLE_NAMES=wkt',
      '-oo',
      'KEEP_GEOM_COLUMNS=NO',
      '-s_srs',
      'EPSG:4326',
    ]);
    expect(wkt.result).toMatchObject({
      features_read: 3,
      features_written: 2,
      skipped_reasons: { null_geometry: 1 },
      crs_assumed: true,
    });
    expect(wkt.result.warnings[0]).toMatch(/no CRS/);
    const ll = await ingestAndCompare('latlon.csv', { lat_name: 'breite', lon_name: 'laenge' }, [
      '-oo',
      'X_POSSIBLE_NAMES=laenge',
      '-oo',
      'Y_POSSIBLE_NAMES=breite',
      '-oo',
      'KEEP_GEOM_COLUMNS=NO',
      '-oo',
      'AUTODETECT_TYPE=YES',
      '-s_srs',
      'EPSG:4326',
    ]);
    expect(ll.result).toMatchObject({
      features_written: 3,
      crs_assumed: true,
      assumed_crs: 'EPSG:4326',
      geometry_column_type: 'Point',
      bbox: [6.96, 48.137, 11.575, 54.323],
    });
    const { rows } = await pool.query(`select station, temp from "${vschema}"."${ll.table}" order by fid`);
    expect(rows).toEqual([
      { station: 'München', temp: 12.5 },
      { station: 'Köln', temp: 11 },
      { station: 'Kiel', temp: 9.1 },
    ]);
    const auto = await ingestAndCompare('auto.csv', {}, [
      '-oo',
      'X_POSSIBLE_NAMES=longitude',
      '-oo',
      'Y_POSSIBLE_NAMES=latitude',
      '-s_srs',
      'EPSG:4326',
    ]);
    expect(auto.result.bbox).toEqual([20, 10, 21, 11]);
  });

  it('KML, KMZ, FlatGeobuf and GML', async () => {
    await upload('mixed.xsd'); // the GML's application schema, read next to it as GDAL does
    for (const f of ['mixed.kml', 'mixed.fgb', 'mixed.gml']) {
      const { result, ours } = await ingestAndCompare(f);
      expect(result.features_written).toBe(ours.n);
      expect(result.features_written).toBeGreaterThanOrEqual(4);
      expect(result.features_repaired).toBeLessThanOrEqual(1);
    }
    const kmz = await ingestAndCompare('mixed.kmz');
    expect(kmz.result.features_written).toBe(kmz.ours.n);
    expect(kmz.result.source.driver).toBe('LIBKML');
  });

  it('keeps Z coordinates', async () => {
    const { result, table } = await ingestAndCompare('lines3d.geojson');
    expect(result.geometry_column_type).toBe('MultiLineStringZ');
    const { rows } = await pool.query(`select st_zmax(geom) z from "${vschema}"."${table}" order by fid`);
    expect(rows.map((r) => r.z)).toEqual([20, 40]);
  });

  it('GeoPackage in FID-range chunks written straight to the table: empty, invalid and null geometries, odd field names', async () => {
    // 2,500 polygons in 3 chunks: one invalid (bow-tie) and one empty in the first two (loaded
    // straight into the staging table, checked by finalize), one null in the last (which GDAL
    // cannot write to the NOT NULL column: that chunk goes through a chunk table).
    const sq = (x: number, y: number, d: number) =>
      `POLYGON ((${x} ${y},${x + d} ${y},${x + d} ${y + d},${x} ${y + d},${x} ${y}))`;
    const rows = Array.from({ length: 2500 }, (_, i) => {
      const x = (i % 50) * 0.01;
      const y = Math.floor(i / 50) * 0.01;
      const wkt =
        i === 10
          ? `POLYGON ((${x} ${y},${x + 0.02} ${y + 0.02},${x + 0.02} ${y},${x} ${y + 0.02},${x} ${y}))`
          : i === 1500
            ? 'POLYGON EMPTY'
            : i === 2200
              ? ''
              : sq(x, y, 0.005);
      return `Zoë ${i},${i / 2},"${wkt}"`;
    });
    writeFileSync(fx.path('chunked.csv'), `Name Full,Surface (m²),wkt\n${rows.join('\n')}\n`);
    execFileSync('ogr2ogr', [
      '-f',
      'GPKG',
      fx.path('chunked.gpkg'),
      fx.path('chunked.csv'),
      '-oo',
      'GEOM_POSSIBLE_NAMES=wkt',
      '-oo',
      'KEEP_GEOM_COLUMNS=NO',
      '-oo',
      'AUTODETECT_TYPE=YES',
      '-nln',
      'chunked',
      '-nlt',
      'MULTIPOLYGON',
      '-a_srs',
      'EPSG:4326',
    ]);
    expect(
      execFileSync('ogrinfo', [
        '-q',
        '-sql',
        'SELECT COUNT(*) FROM chunked WHERE ST_IsEmpty(geom)',
        fx.path('chunked.gpkg'),
      ]).toString(),
    ).toMatch(/= 1\b/);
    const { result, table } = await ingestAndCompare('chunked.gpkg', { chunk_size: 1000 });
    expect(result).toMatchObject({
      chunks: 3,
      features_read: 2500,
      features_written: 2498,
      features_skipped: 2,
      features_repaired: 1,
      skipped_reasons: { null_geometry: 1, empty_geometry: 1 },
    });
    const {
      rows: [t],
    } = await pool.query(`select count(*)::int n, count(distinct fid)::int d, min(fid)::int lo, max(fid)::int hi,
      bool_and(st_isvalid(geom)) valid, count(*) filter (where name_full = 'Zoë 10')::int bowtie, sum(surface_m2)::float s from "${vschema}"."${table}"`);
    expect(t).toEqual({
      n: 2498,
      d: 2498,
      lo: 1,
      hi: 2500,
      valid: true,
      bowtie: 1,
      s: (2499 * 2500) / 4 - 1500 / 2 - 2200 / 2,
    });
    const leftovers = await pool.query(
      `select tablename from pg_tables where schemaname = $1 and tablename like 'cm\\_%'`,
      [vschema],
    );
    expect(leftovers.rows).toEqual([]);
  });
});

describe('ingest_vector: table rules', () => {
  it('rejects bad table and schema names at submit, creating nothing', async () => {
    const blob = `${prefix}/mixed.geojson`;
    const bad: Array<[string, unknown]> = [
      ['table_name', 'a"b'],
      ['table_name', 'has space'],
      ['table_name', 'x; drop table y'],
      ['table_name', 'a'.repeat(64)],
      ['table_name', 'Upper'],
      ['schema', 'geo"; --'],
      ['schema', 'my schema'],
    ];
    const before = await pool.query('select count(*)::int n from pg_namespace');
    const jobsBefore = await pool.query(`select count(*)::int n from "${tm.schema}".jobs`);
    for (const [field, value] of bad) {
      const err = await tm.submit('ingest_vector', { blob_name: blob, table_name: 'ok', [field]: value }).then(
        () => null,
        (e) => e,
      );
      expect(err, `${field}=${String(value)}`).toBeTruthy();
      expect(err.code).toBe('CM_ERR_INVALID_PARAMETERS');
      expect(JSON.stringify({ m: err.message, i: err.issues })).toContain(field);
    }
    const after = await pool.query('select count(*)::int n from pg_namespace');
    expect(after.rows[0].n).toBe(before.rows[0].n);
    const jobs = await pool.query(`select count(*)::int n from "${tm.schema}".jobs`);
    expect(jobs.rows[0].n).toBe(jobsBefore.rows[0].n);
  });

  it('refuses a schema outside the allow-list and an existing table without overwrite; replaces it with overwrite', async () => {
    const blob = await upload('points.geojson');
    const notAllowed = await ingest({ blob_name: blob, table_name: 'pts', schema: 'public' });
    expect(notAllowed.error).toMatchObject({ code: 'SCHEMA_NOT_ALLOWED' });
    const first = await ingest({ blob_name: blob, table_name: 'pts' });
    expect(first.status).toBe('completed');
    expect((first.result as any).features_written).toBe(2500);
    const again = await ingest({ blob_name: blob, table_name: 'pts', chunk_size: 1000 });
    expect(again.status).toBe('failed');
    expect(again.error).toMatchObject({ code: 'TABLE_EXISTS' });
    const mixed = await upload('mixed.geojson');
    const replaced = await ingest({ blob_name: mixed, table_name: 'pts', overwrite: true });
    expect(replaced.status).toBe('completed');
    const n = await pool.query(`select count(*)::int n from "${vschema}".pts`);
    expect(n.rows[0].n).toBe(5);
    const leftovers = await pool.query(
      `select count(*)::int n from pg_tables where schemaname = $1 and tablename like 'cm_stage_%'`,
      [vschema],
    );
    expect(leftovers.rows[0].n).toBe(0);
  });

  it('fails permanently on a missing blob', async () => {
    const job = await ingest({ blob_name: `${prefix}/nope.geojson`, table_name: 'nope' });
    expect(job.error).toMatchObject({ code: 'BLOB_NOT_FOUND' });
  });
});
