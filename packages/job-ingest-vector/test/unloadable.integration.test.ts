/**
 * Sources GDAL's PostgreSQL path cannot load as they are fail at attempt 1 with a permanent code
 * naming the file and the way out, and leave no table: field names that differ only in case or
 * beyond 63 bytes, and curves in a layer of mixed geometry types. Both failed after every retry
 * with a transient TASK_ERROR ("column \"name\" does not exist", "Tried to create unsupported
 * geometry type").
 */
import { randomBytes } from 'node:crypto';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { createStorage, storageConfigFromEnv } from '@coremachine/storage';
import { createTestMachine, DATABASE_URL, type TestMachine } from '@coremachine/test-kit';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import ingestVector from '../src/index.ts';

const storage = createStorage(storageConfigFromEnv());
const container = `vu-${randomBytes(4).toString('hex')}`;
const vschema = `vu_${randomBytes(4).toString('hex')}`;
let tm: TestMachine;
let pool: pg.Pool;
let dir: string;
const p = (n: string) => join(dir, n);
const long = 'a_field_name_long_enough_to_pass_the_postgresql_limit_of_63_bytes';

const point = (properties: Record<string, unknown>, x: number) => ({
  type: 'Feature',
  properties,
  geometry: { type: 'Point', coordinates: [x, 1] },
});

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'cm-vector-unloadable-'));
  const fc = (features: unknown[]) => JSON.stringify({ type: 'FeatureCollection', features });
  writeFileSync(p('case.geojson'), fc([point({ Name: 'a', name: 'b' }, 1), point({ Name: 'c', name: 'd' }, 2)]));
  writeFileSync(p('long.geojson'), fc([point({ [`${long}_x`]: 1, [`${long}_y`]: 2 }, 1)]));
  writeFileSync(
    p('curves.csv'),
    'id,wkt\n1,"CURVEPOLYGON(CIRCULARSTRING(0 0,1 1,2 0,1 -1,0 0))"\n2,"LINESTRING(0 0,3 0)"\n',
  );
  execFileSync(
    'ogr2ogr',
    ['-f', 'GPKG', p('curves.gpkg'), p('curves.csv'), '-oo', 'GEOM_POSSIBLE_NAMES=wkt', '-oo', 'KEEP_GEOM_COLUMNS=NO'],
    { stdio: 'pipe' },
  );
  execFileSync(
    'ogr2ogr',
    ['-f', 'GPKG', '-a_srs', 'EPSG:4326', '-nlt', 'GEOMETRY', '-nln', 'curves', p('mixed.gpkg'), p('curves.gpkg')],
    {
      stdio: 'pipe',
    },
  );
  pool = new pg.Pool({ connectionString: DATABASE_URL, max: 2 });
  await storage.ensureContainer(container);
  tm = await createTestMachine({ plugins: [ingestVector], services: { vector: { schemas: [vschema] } } });
});

afterAll(async () => {
  await tm?.close();
  await pool?.query(`drop schema if exists "${vschema}" cascade`);
  await pool?.end();
  await storage.deleteContainer(container).catch(() => {});
  rmSync(dir, { recursive: true, force: true });
});

async function expectUnloadable(file: string, code: string, fields: string[]) {
  const blob = `in/${file}`;
  await storage.uploadFile(container, blob, p(file));
  const job = await tm.submitAndWait(
    'ingest_vector',
    { schema: vschema, container_name: container, blob_name: blob, table_name: 't' },
    { timeoutMs: 60_000 },
  );
  expect(job.status).toBe('failed');
  expect(job.error).toMatchObject({ code, stage: 'prepare' });
  expect(job.error?.message).toContain(`${container}/${blob}`);
  for (const f of fields) expect(job.error?.message).toContain(f);
  const tasks = await tm.tasks(job.id);
  expect(tasks.map((t) => [t.status, t.attempts])).toEqual([['failed', 1]]);
  const { rows } = await pool.query(`select table_name from information_schema.tables where table_schema = $1`, [
    vschema,
  ]);
  expect(rows).toEqual([]);
}

describe('ingest_vector: sources that cannot be loaded as they are', () => {
  it('fields differing only in case: FIELD_NAMES_COLLIDE naming both', async () => {
    await expectUnloadable('case.geojson', 'FIELD_NAMES_COLLIDE', ['"Name" and "name"', 'rename one']);
  });

  it('fields sharing their first 63 bytes: FIELD_NAMES_COLLIDE', async () => {
    await expectUnloadable('long.geojson', 'FIELD_NAMES_COLLIDE', [`"${long}_x" and "${long}_y"`]);
  });

  it('curves in a layer of mixed geometry types: GEOMETRY_UNSUPPORTED saying how to linearise them', async () => {
    await expectUnloadable('mixed.gpkg', 'GEOMETRY_UNSUPPORTED', ['feature 1', 'CONVERT_TO_LINEAR']);
  });
});
