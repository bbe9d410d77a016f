/**
 * Z and M kept as the source has them (a PolyLineM shapefile, a PointZM GeoPackage loaded
 * straight into the table), coordinates compared with ogrinfo's; force_2d drops them and counts
 * the coordinates that lost a dimension.
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
const container = `vd-${randomBytes(4).toString('hex')}`;
const vschema = `vd_${randomBytes(4).toString('hex')}`;
let tm: TestMachine;
let pool: pg.Pool;
let dir: string;
const p = (n: string) => join(dir, n);
const ogr = (...args: string[]) => execFileSync('ogr2ogr', args, { stdio: 'pipe' });

/** Every number of the geometries ogrinfo prints for a source, in order. */
function ogrinfoCoordinates(source: string): number[] {
  const out = execFileSync('ogrinfo', ['-al', '-q', '-geom=YES', source], { encoding: 'utf8' });
  return out
    .split('\n')
    .filter((l) => /^\s+(MULTI)?(POINT|LINESTRING|POLYGON)/.test(l))
    .flatMap((l) => (l.match(/-?\d+(\.\d+)?(e-?\d+)?/g) ?? []).map(Number));
}

async function tableCoordinates(table: string): Promise<number[]> {
  const { rows } = await pool.query<{ w: string }>(
    `select st_astext(geom) w from "${vschema}"."${table}" order by fid`,
  );
  return rows.flatMap((r) => (r.w.match(/-?\d+(\.\d+)?(e-?\d+)?/g) ?? []).map(Number));
}

async function columnType(table: string): Promise<string> {
  const { rows } = await pool.query<{ t: string }>(
    `select format_type(atttypid, atttypmod) t from pg_attribute where attrelid = $1::regclass and attname = 'geom'`,
    [`"${vschema}"."${table}"`],
  );
  return rows[0]!.t;
}

async function ingest(file: string, table: string, extra: Record<string, unknown> = {}) {
  const blob = `dims/${file}`;
  await storage.uploadFile(container, blob, p(file));
  return tm.submitAndWait(
    'ingest_vector',
    { schema: vschema, container_name: container, blob_name: blob, table_name: table, ...extra },
    { timeoutMs: 60_000 },
  );
}

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'cm-vector-dims-'));
  writeFileSync(
    p('lines.csv'),
    [
      'id,name,WKT',
      '1,a,"LINESTRING M (-50.8 20.1 1011,-50.7 20.2 1012.5,-50.6 20.25 1013)"',
      '2,b,"MULTILINESTRING M ((10 10 1,11 11 2),(12 12 3,13.5 13.25 4))"',
    ].join('\n'),
  );
  ogr(
    '-f',
    'ESRI Shapefile',
    p('shp'),
    p('lines.csv'),
    '-nln',
    'lines_m',
    '-nlt',
    'MULTILINESTRINGM',
    '-a_srs',
    'EPSG:4326',
  );
  execFileSync('zip', ['-qj', p('lines_m.zip'), ...['shp', 'shx', 'dbf', 'prj'].map((e) => p(`shp/lines_m.${e}`))]);
  writeFileSync(
    p('points.csv'),
    ['id,WKT', '1,"POINT ZM (1.5 2.5 100 7)"', '2,"POINT ZM (-3 4.25 -20.5 8.5)"', '3,"POINT ZM (5 6 0 9)"'].join('\n'),
  );
  ogr('-f', 'GPKG', p('points_zm.gpkg'), p('points.csv'), '-nln', 'pts', '-nlt', 'POINTZM', '-a_srs', 'EPSG:4326');
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

describe('ingest_vector: Z and M', () => {
  it('keeps M of a PolyLineM shapefile: MultiLineStringM column, coordinates equal to ogrinfo', async () => {
    const job = await ingest('lines_m.zip', 'lines_m');
    expect(job.error).toBeNull();
    expect(job.result).toMatchObject({
      geometry_column_type: 'MultiLineStringM',
      dimensions: 'XYM',
      source_dimensions: 'XYM',
      coordinates_flattened: 0,
      features_written: 2,
    });
    expect(await columnType('lines_m')).toBe('geometry(MultiLineStringM,4326)');
    const ours = await tableCoordinates('lines_m');
    const ref = ogrinfoCoordinates(`/vsizip/${p('lines_m.zip')}`);
    expect(ours).toHaveLength(21);
    expect(ours).toEqual(ref);
    expect(ours.slice(0, 3)).toEqual([-50.8, 20.1, 1011]);
  });

  it('keeps Z and M of a PointZM GeoPackage (rows written straight into the table)', async () => {
    const job = await ingest('points_zm.gpkg', 'pts_zm');
    expect(job.error).toBeNull();
    expect(job.result).toMatchObject({ geometry_column_type: 'PointZM', dimensions: 'XYZM', features_written: 3 });
    expect(await columnType('pts_zm')).toBe('geometry(PointZM,4326)');
    const ours = await tableCoordinates('pts_zm');
    expect(ours).toEqual(ogrinfoCoordinates(p('points_zm.gpkg')));
    expect(ours).toEqual([1.5, 2.5, 100, 7, -3, 4.25, -20.5, 8.5, 5, 6, 0, 9]);
  });

  it('force_2d drops Z and M and counts the coordinates that lost a dimension', async () => {
    const lines = await ingest('lines_m.zip', 'lines_2d', { force_2d: true });
    expect(lines.error).toBeNull();
    expect(lines.result).toMatchObject({
      geometry_column_type: 'MultiLineString',
      dimensions: 'XY',
      source_dimensions: 'XYM',
      coordinates_flattened: 7,
    });
    expect(await columnType('lines_2d')).toBe('geometry(MultiLineString,4326)');
    const ref = ogrinfoCoordinates(`/vsizip/${p('lines_m.zip')}`);
    // Every third number of the source is a measure: the rest are the 2D coordinates.
    expect(await tableCoordinates('lines_2d')).toEqual(ref.filter((_, i) => i % 3 !== 2));
    const pts = await ingest('points_zm.gpkg', 'pts_2d', { force_2d: true });
    expect(pts.result).toMatchObject({ geometry_column_type: 'Point', coordinates_flattened: 3 });
  });
});
