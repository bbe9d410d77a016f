import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { DATABASE_URL } from '@coremachine/test-kit';
import {
  columnsOf,
  gdalPgConnection,
  openVectorLayer,
  planChunks,
  planGeometry,
  scanLayer,
  flatType,
} from '@coremachine/geo/vector';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadChunk } from '../src/load-chunk.ts';
import { createStagingTable } from '../src/tables.ts';
import { makeFixtures, type Fixtures } from './fixtures.ts';

const schema = `vl_${randomBytes(4).toString('hex')}`;
let fx: Fixtures;
let pool: pg.Pool;

beforeAll(() => {
  fx = makeFixtures();
  pool = new pg.Pool({ connectionString: DATABASE_URL, max: 6 });
});
afterAll(async () => {
  await pool.query(`drop schema if exists "${schema}" cascade`);
  await pool.end();
  fx.cleanup();
});

describe('loadChunk delivered twice', () => {
  it('leaves every feature exactly once, sequentially and concurrently', async () => {
    const src = await openVectorLayer(fx.path('projected.gpkg'), { format: 'gpkg' });
    const columns = columnsOf(src.layer);
    const scan = scanLayer(src.layer, 1000, false);
    expect(scan.ranges.map((r) => [r.start, r.count, r.fidMin, r.fidNext])).toEqual([
      [0, 1000, 1, 1001],
      [1000, 1000, 1001, 2001],
      [2000, 500, 2001, undefined],
    ]);
    const geometry = planGeometry([flatType(src.layer.geomType)], false);
    const staging = { schema, table: 'twice' };
    await pool.query(`create schema if not exists "${schema}"`);
    await createStagingTable(pool, staging, columns, geometry);
    const opts = { staging, columns, geometry, pg: gdalPgConnection(DATABASE_URL), checkLonLatRange: false };
    const first = await loadChunk(pool, src, scan.ranges[1]!, opts);
    const again = await loadChunk(pool, src, scan.ranges[1]!, opts);
    expect(first).toMatchObject({ read: 1000, inserted: 1000 });
    expect(again).toMatchObject({ read: 1000, inserted: 0 });
    // Two concurrent deliveries of each chunk (separate GDAL handles, as two workers would have).
    const other = await openVectorLayer(fx.path('projected.gpkg'), { format: 'gpkg' });
    const runs = await Promise.all(
      scan.ranges.flatMap((r) => [loadChunk(pool, src, r, opts), loadChunk(pool, other, r, opts)]),
    );
    expect(runs.reduce((a, r) => a + r.inserted, 0)).toBe(1500);
    const { rows } =
      await pool.query(`select count(*)::int n, count(distinct fid)::int d, min(fid)::int lo, max(fid)::int hi,
      count(distinct name)::int names from "${schema}".twice`);
    expect(rows[0]).toEqual({ n: 2500, d: 2500, lo: 1, hi: 2500, names: 2500 });
    const chunkTables = await pool.query(
      `select count(*)::int n from pg_tables where schemaname = $1 and tablename like 'cm_chunk_%'`,
      [schema],
    );
    expect(chunkTables.rows[0].n).toBe(0);
    src.close();
    other.close();
  });

  it('GeoPackage FID ranges written straight into the staging table: exactly once, sequentially and concurrently', async () => {
    const src = await openVectorLayer(fx.path('projected.gpkg'), { format: 'gpkg' });
    const columns = columnsOf(src.layer);
    const plan = planChunks(src.dataset, src.layer, src.driver, 1000);
    expect(plan.method).toBe('fid_range');
    expect(plan.ranges.every((r) => r.preserveFid)).toBe(true);
    const geometry = planGeometry([flatType(src.layer.geomType)], false);
    const staging = { schema, table: 'direct' };
    await pool.query(`create schema if not exists "${schema}"`);
    await createStagingTable(pool, staging, columns, geometry);
    const opts = { staging, columns, geometry, pg: gdalPgConnection(DATABASE_URL), checkLonLatRange: false };
    const first = await loadChunk(pool, src, plan.ranges[1]!, opts);
    const again = await loadChunk(pool, src, plan.ranges[1]!, opts);
    // Three even FID ranges of 834.
    expect(first).toMatchObject({ read: 834, inserted: 834 });
    expect(again).toMatchObject({ read: 834, inserted: 0 });
    const other = await openVectorLayer(fx.path('projected.gpkg'), { format: 'gpkg' });
    const runs = await Promise.all(
      plan.ranges.flatMap((r) => [loadChunk(pool, src, r, opts), loadChunk(pool, other, r, opts)]),
    );
    expect(runs.reduce((a, r) => a + r.inserted, 0)).toBe(2500 - 834);
    const { rows } =
      await pool.query(`select count(*)::int n, count(distinct fid)::int d, min(fid)::int lo, max(fid)::int hi,
      count(distinct name)::int names, bool_and(st_srid(geom) = 4326) srid, max(st_x(geom)) < 180 lon from "${schema}".direct`);
    expect(rows[0]).toEqual({ n: 2500, d: 2500, lo: 1, hi: 2500, names: 2500, srid: true, lon: true });
    // Nothing went through chunk tables.
    const chunkTables = await pool.query(
      `select count(*)::int n from pg_tables where schemaname = $1 and tablename like 'cm_chunk_%'`,
      [schema],
    );
    expect(chunkTables.rows[0].n).toBe(0);
    src.close();
    other.close();
  });
});
