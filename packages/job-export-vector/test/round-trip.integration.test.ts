/**
 * export_vector round trips: a table exported in chunks to GeoPackage, FlatGeobuf and GeoJSON,
 * each file loaded again with ingest_vector, gives the same WKB and attributes by primary key;
 * a bbox across the antimeridian and a where condition export the rows PostGIS says.
 */
import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { ensureStacStore, getItem } from '@coremachine/geo/stac';
import { createStorage, storageConfigFromEnv } from '@coremachine/storage';
import { createTestMachine, DATABASE_URL, type TestMachine } from '@coremachine/test-kit';
import ingestVector from '@coremachine/job-ingest-vector';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import exportVector from '../src/index.ts';

const storage = createStorage(storageConfigFromEnv());
const tag = randomBytes(4).toString('hex');
const container = `xv-${tag}`;
const vschema = `xv_${tag}`;
const stacSchema = `xv_stac_${tag}`;
let tm: TestMachine;
let pool: pg.Pool;

const COLUMNS = ['name', 'n', 'big', 'area', 'flag', 'day', 'seen'];

beforeAll(async () => {
  pool = new pg.Pool({ connectionString: DATABASE_URL, max: 2 });
  await storage.ensureContainer(container);
  await ensureStacStore(pool, stacSchema);
  // Shaped like ingest_vector's tables: fid key, attributes of every kind (some null), MultiPolygons.
  await pool.query(`create schema "${vschema}";
    create table "${vschema}".parcels (fid bigint primary key, name text, n integer, big bigint, area double precision,
      flag boolean, day date, seen timestamptz, geom geometry(MultiPolygon, 4326) not null);
    insert into "${vschema}".parcels
      select i, case when i % 7 = 0 then null else 'Parzelle ' || i || ' Zürich' end, i, i::bigint * 1234567891, i * 0.0123457 + 0.1,
             i % 2 = 0, date '2020-01-01' + i, timestamptz '2020-01-01T06:30:00Z' + i * interval '1 hour',
             st_multi(st_buffer(st_setsrid(st_makepoint(((i * 0.137) % 358) - 179, ((i * 0.071) % 170) - 85), 4326), 0.01 + i * 0.00001, 2))
        from generate_series(1, 2500) i`);
  tm = await createTestMachine({
    plugins: [ingestVector, exportVector],
    services: { vector: { schemas: [vschema] }, stac: { schema: stacSchema } },
  });
});

afterAll(async () => {
  await tm?.close();
  await pool?.query(`drop schema if exists "${vschema}" cascade; drop schema if exists "${stacSchema}" cascade`);
  await pool?.end();
  await storage.deleteContainer(container).catch(() => {});
});

/** Rows of the source without an identical row (WKB and attributes) in `table` by key, and the reverse. */
async function differences(table: string, key: string): Promise<number> {
  const same = COLUMNS.map((c) => `s."${c}" is not distinct from r."${c}"`).join(' and ');
  const { rows } = await pool.query<{ n: number }>(
    `select count(*)::int n from "${vschema}".parcels s full join "${vschema}"."${table}" r on r."${key}" = s.fid
      where s.fid is null or r."${key}" is null or st_asbinary(s.geom) <> st_asbinary(r.geom) or not (${same})`,
  );
  return rows[0]!.n;
}

describe('export_vector', () => {
  for (const format of ['gpkg', 'fgb', 'geojson'] as const) {
    it(`${format}: exported in chunks, loaded again, identical WKB and attributes by key`, async () => {
      const job = await tm.submitAndWait(
        'export_vector',
        { schema: vschema, table_name: 'parcels', format, container_name: container, chunk_size: 1000 },
        { timeoutMs: 90_000 },
      );
      expect(job.error, JSON.stringify(job.error)).toBeNull();
      const r = job.result as Record<string, any>;
      const blob = `exports/${vschema}/parcels.${format}`;
      expect(r).toMatchObject({ rows: 2500, chunks: 3, blob, format, stac_collection: 'exports' });
      expect(r.url).toBe(storage.blobUrl(container, blob));
      expect(r.url).not.toContain('?');
      // Only the output is left: the parts are deleted.
      const left: string[] = [];
      for await (const b of storage.list(container, { prefix: `exports/${vschema}/parcels.${format}` }))
        left.push(b.name);
      expect(left).toEqual([blob]);
      const item = await getItem(pool, stacSchema, 'exports', r.stac_item_id);
      expect(item?.assets.data?.href).toBe(r.url);
      expect(item?.properties['coremachine:row_count']).toBe(2500);

      const back = await tm.submitAndWait(
        'ingest_vector',
        { schema: vschema, container_name: container, blob_name: blob, table_name: `rt_${format}` },
        { timeoutMs: 90_000 },
      );
      expect(back.error, JSON.stringify(back.error)).toBeNull();
      // A GeoPackage keeps the key as its FID; FlatGeobuf and GeoJSON as an attribute (loaded as fid_2).
      const key = format === 'gpkg' ? 'fid' : 'fid_2';
      expect(await differences(`rt_${format}`, key)).toBe(0);
      const { rows } = await pool.query(
        `select column_name, data_type from information_schema.columns where table_schema = $1 and table_name = $2 order by ordinal_position`,
        [vschema, `rt_${format}`],
      );
      const names = rows.map((x) => x.column_name as string).filter((c) => c !== 'fid' && c !== 'fid_2');
      expect(names).toEqual([...COLUMNS, 'geom']);
      // Booleans stay booleans both ways (exported as the format's Boolean, loaded as boolean).
      expect(rows.find((x) => x.column_name === 'flag')?.data_type).toBe('boolean');
    });
  }

  it('exports the rows of a bbox across the antimeridian and a where condition', async () => {
    const job = await tm.submitAndWait(
      'export_vector',
      {
        schema: vschema,
        table_name: 'parcels',
        format: 'gpkg',
        container_name: container,
        blob_name: 'exports/east-west.gpkg',
        bbox: [170, -90, -170, 90],
        where: [{ column: 'flag', op: '=', value: true }],
      },
      { timeoutMs: 60_000 },
    );
    expect(job.error, JSON.stringify(job.error)).toBeNull();
    const env = (w: number, e: number) => `st_intersects(geom, st_makeenvelope(${w}, -90, ${e}, 90, 4326))`;
    const { rows } = await pool.query(
      `select count(*)::int n from "${vschema}".parcels where flag and (${env(170, 180)} or ${env(-180, -170)})`,
    );
    expect(rows[0].n).toBeGreaterThan(10);
    expect((job.result as any).rows).toBe(rows[0].n);
    const bad = await tm.submitAndWait('export_vector', {
      schema: vschema,
      table_name: 'parcels',
      format: 'fgb',
      container_name: container,
      where: [{ column: 'nope', op: '=', value: 1 }],
    });
    expect(bad.error).toMatchObject({ code: 'COLUMN_NOT_FOUND' });
    expect((await tm.tasks(bad.id)).map((t) => t.attempts)).toEqual([1]);
  });

  it('a failed export leaves no part blob behind (the parts of the chunks that did succeed are deleted)', async () => {
    // The last of three chunks fails on every attempt: a NaN coordinate is no JSON number.
    await pool.query(`create table "${vschema}".nan_pts (fid bigint primary key, geom geometry(Point, 4326) not null);
      insert into "${vschema}".nan_pts select i, st_setsrid(st_makepoint(case when i = 3000 then 'NaN'::float8 else i * 0.01 end, 0), 4326)
        from generate_series(1, 3000) i`);
    const job = await tm.submitAndWait(
      'export_vector',
      { schema: vschema, table_name: 'nan_pts', format: 'geojson', container_name: container, chunk_size: 1000 },
      { timeoutMs: 90_000 },
    );
    expect(job.status).toBe('failed');
    const chunks = (await tm.tasks(job.id)).filter((t) => t.stageName === 'export_chunk');
    // The other chunks wrote their parts before the job failed (its last chunk retried meanwhile).
    expect(chunks.filter((t) => t.status === 'completed').length).toBeGreaterThanOrEqual(1);
    expect(chunks.find((t) => t.status === 'failed')?.attempts).toBe(4);
    const left: string[] = [];
    for await (const b of storage.list(container, { prefix: `exports/${vschema}/nan_pts` })) left.push(b.name);
    expect(left).toEqual([]);
  });
});
