/**
 * Names from file names (a GeoJSON and a CSV loaded without table_name, read from local copies
 * whose file names are hashes) and one way of reporting an assumed CRS for every format.
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
import { tableNameFromFile } from '../src/params.ts';

const storage = createStorage(storageConfigFromEnv());
const container = `vn-${randomBytes(4).toString('hex')}`;
const vschema = `vn_${randomBytes(4).toString('hex')}`;
let tm: TestMachine;
let pool: pg.Pool;
let dir: string;
const p = (n: string) => join(dir, n);

async function ingest(file: string, blob: string, extra: Record<string, unknown> = {}) {
  await storage.uploadFile(container, blob, p(file));
  const job = await tm.submitAndWait(
    'ingest_vector',
    { schema: vschema, container_name: container, blob_name: blob, ...extra },
    { timeoutMs: 60_000 },
  );
  expect(job.error).toBeNull();
  return job.result as Record<string, any>;
}

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'cm-vector-names-'));
  writeFileSync(
    p('parcels.geojson'),
    JSON.stringify({
      type: 'FeatureCollection',
      features: [{ type: 'Feature', properties: { a: 1 }, geometry: { type: 'Point', coordinates: [1, 2] } }],
    }),
  );
  writeFileSync(p('stations.csv'), 'name,lat,lon\na,10,20\nb,11,21\n');
  writeFileSync(p('shapes.csv'), 'id,wkt\n1,"POINT (5 6)"\n');
  execFileSync('ogr2ogr', ['-f', 'ESRI Shapefile', p('noprj'), p('shapes.csv'), '-nln', 'noprj'], { stdio: 'pipe' });
  execFileSync('zip', ['-qj', p('noprj.zip'), ...['shp', 'shx', 'dbf'].map((e) => p(`noprj/noprj.${e}`))]);
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

describe('ingest_vector: names and CRS reporting', () => {
  it('names the layer and the table after the file of a GeoJSON and a CSV', async () => {
    const gj = await ingest('parcels.geojson', 'in/Parcels 2024.geojson');
    expect(gj).toMatchObject({ table: `${vschema}.parcels_2024`, table_name: 'parcels_2024' });
    expect(gj.source.layer).toBe('Parcels 2024');
    const csv = await ingest('stations.csv', 'in/Stations-Nord.csv');
    expect(csv).toMatchObject({ table_name: 'stations_nord', source: { layer: 'Stations-Nord' } });
    const { rows } = await pool.query(`select count(*)::int n from "${vschema}".stations_nord`);
    expect(rows[0].n).toBe(2);
    expect(tableNameFromFile('a/2024 Zürich Grenzen.gpkg')).toBe('t_2024_zurich_grenzen');
  });

  it('reports an assumed CRS the same way for every format: crs_assumed, assumed_crs, a warning', async () => {
    const results = [
      await ingest('stations.csv', 'crs/stations.csv', { table_name: 'll' }),
      await ingest('shapes.csv', 'crs/shapes.csv', { table_name: 'wkt' }),
      await ingest('noprj.zip', 'crs/noprj.zip', { table_name: 'shp' }),
    ];
    for (const r of results) {
      expect(r).toMatchObject({ crs_assumed: true, assumed_crs: 'EPSG:4326', source_crs: null });
      expect(
        r.warnings.filter((w: string) => /has no CRS: its coordinates were taken as EPSG:4326/.test(w)),
      ).toHaveLength(1);
    }
    const gj = await ingest('parcels.geojson', 'crs/parcels.geojson', { table_name: 'gj' });
    expect(gj).toMatchObject({ crs_assumed: false, assumed_crs: null, source_crs: 'EPSG:4326' });
    expect(gj.warnings).toEqual([]);
  });
});
