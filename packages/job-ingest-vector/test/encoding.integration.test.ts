/**
 * Text encodings of shapefiles (Latin-1 with and without a .cpg, CP1252 without, a .cpg that
 * lies, Cyrillic without a declaration) and clean failure: a job failing in prepare, load or
 * finalize leaves no table of its own behind.
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
const container = `ve-${randomBytes(4).toString('hex')}`;
const vschema = `ve_${randomBytes(4).toString('hex')}`;
let tm: TestMachine;
let pool: pg.Pool;
let dir: string;
const p = (n: string) => join(dir, n);
const ogr = (...args: string[]) => execFileSync('ogr2ogr', args, { stdio: 'pipe' });

const LATIN = ['São Paulo', 'Zürich Straße', 'Crème brûlée', 'Ærøskøbing'];

/** A zipped point shapefile whose `name` column holds `names`, written in `encoding`. */
function shapefile(stem: string, names: string[], encoding: string, cpg: string | null): string {
  const csv = p(`${stem}.csv`);
  writeFileSync(csv, ['id,name,x,y', ...names.map((n, i) => `${i + 1},"${n}",${i % 90},${i % 45}`)].join('\n'));
  const out = p(`${stem}_shp`);
  ogr(
    '-f',
    'ESRI Shapefile',
    out,
    csv,
    '-nln',
    stem,
    '-oo',
    'X_POSSIBLE_NAMES=x',
    '-oo',
    'Y_POSSIBLE_NAMES=y',
    '-a_srs',
    'EPSG:4326',
    '-lco',
    `ENCODING=${encoding}`,
  );
  const files = ['shp', 'shx', 'dbf', 'prj'].map((e) => `${out}/${stem}.${e}`);
  if (cpg !== null) {
    writeFileSync(`${out}/${stem}.cpg`, cpg);
    files.push(`${out}/${stem}.cpg`);
  }
  execFileSync('zip', ['-qj', p(`${stem}.zip`), ...files]);
  return `${stem}.zip`;
}

async function ingest(file: string, table: string, extra: Record<string, unknown> = {}) {
  const blob = `enc/${file}`;
  await storage.uploadFile(container, blob, p(file));
  const job = await tm.submitAndWait(
    'ingest_vector',
    { schema: vschema, container_name: container, blob_name: blob, table_name: table, ...extra },
    { timeoutMs: 60_000 },
  );
  const tasks = await tm.tasks(job.id);
  return { job, result: job.result as Record<string, any>, tasks };
}

async function names(table: string): Promise<string[]> {
  const { rows } = await pool.query<{ name: string }>(`select name from "${vschema}"."${table}" order by fid`);
  return rows.map((r) => r.name);
}

/** Every table in the test schema: a failed job must leave none of its own. */
async function tablesLeft(): Promise<string[]> {
  const { rows } = await pool.query<{ t: string }>(`select tablename t from pg_tables where schemaname = $1`, [
    vschema,
  ]);
  return rows.map((r) => r.t).sort();
}

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'cm-vector-enc-'));
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

describe('ingest_vector: text encodings', () => {
  it('Latin-1 shapefile with a .cpg: read in the declared encoding, accents intact', async () => {
    const { job, result } = await ingest(shapefile('latin_cpg', LATIN, 'ISO-8859-1', 'ISO-8859-1'), 'latin_cpg');
    expect(job.error).toBeNull();
    expect(result.encoding).toEqual({ name: 'ISO-8859-1', source: 'cpg' });
    expect(await names('latin_cpg')).toEqual(LATIN);
  });

  it('Latin-1 and CP1252 shapefiles without a .cpg: the encoding is detected, reported and warned about', async () => {
    const latin = await ingest(shapefile('latin_nocpg', LATIN, 'ISO-8859-1', null), 'latin_nocpg');
    expect(latin.job.error).toBeNull();
    expect(latin.result.encoding).toEqual({ name: 'ISO-8859-1', source: 'detected' });
    expect(latin.result.warnings.join(' ')).toContain('read as ISO-8859-1');
    expect(await names('latin_nocpg')).toEqual(LATIN);

    const quoted = ['“Grüße” – 5 €', 'naïve café'];
    const cp = await ingest(shapefile('cp1252_nocpg', quoted, 'CP1252', null), 'cp1252_nocpg');
    expect(cp.job.error).toBeNull();
    expect(cp.result.encoding).toEqual({ name: 'CP1252', source: 'detected' });
    expect(await names('cp1252_nocpg')).toEqual(quoted);

    // The parameter overrides detection.
    const forced = await ingest('latin_nocpg.zip', 'latin_forced', { encoding: 'CP1252' });
    expect(forced.result.encoding).toEqual({ name: 'CP1252', source: 'parameter' });
    expect(await names('latin_forced')).toEqual(LATIN);
  });

  it('prepare: an undetectable encoding (CP1251, no .cpg) and a lying .cpg fail at attempt 1 naming the column; no table left', async () => {
    const before = await tablesLeft();
    const cyr = await ingest(shapefile('cyr', ['Привет мир', 'Москва'], 'CP1251', null), 'cyr');
    expect(cyr.job.status).toBe('failed');
    expect(cyr.job.error).toMatchObject({ code: 'ENCODING_UNDETECTED' });
    expect(cyr.job.error?.message).toContain('Column "name"');
    expect(cyr.job.error?.message).toContain('set encoding');
    expect(cyr.job.error?.message).toContain(`${container}/enc/cyr.zip`);
    expect(cyr.job.error?.message).not.toContain(tmpdir());
    expect(cyr.tasks.map((t) => t.attempts)).toEqual([1]);

    const lying = await ingest(shapefile('lying', LATIN, 'ISO-8859-1', 'UTF-8'), 'lying');
    expect(lying.job.error).toMatchObject({ code: 'ENCODING_INVALID' });
    expect(lying.job.error?.message).toContain('Column "name"');
    expect(lying.job.error?.message).toContain('set encoding to ISO-8859-1');
    expect(lying.tasks.map((t) => t.attempts)).toEqual([1]);
    // With the suggested encoding it loads.
    const fixed = await ingest('lying.zip', 'lying', { encoding: 'ISO-8859-1' });
    expect(fixed.job.error).toBeNull();
    expect(await names('lying')).toEqual(LATIN);
    expect(await tablesLeft()).toEqual([...before, 'lying'].sort());
  });

  it('load: text beyond the prepare sample that PostgreSQL refuses fails the load task at attempt 1; no table left', async () => {
    const before = await tablesLeft();
    const rows = [...Array.from({ length: 6000 }, (_, i) => `plain ${i}`), 'São Paulo'];
    const { job, tasks } = await ingest(shapefile('late', rows, 'ISO-8859-1', 'UTF-8'), 'late');
    expect(job.status).toBe('failed');
    expect(job.error, JSON.stringify(job.error)).toMatchObject({ code: 'ENCODING_INVALID', stage: 'load' });
    expect(job.error?.message).toContain('Column "name"');
    expect(job.error?.message).toContain('feature 6000');
    const load = tasks.filter((t) => t.stageName === 'load');
    expect(load.map((t) => [t.status, t.attempts])).toEqual([['failed', 1]]);
    expect(await tablesLeft()).toEqual(before);
  });

  it('finalize: no usable geometry fails the job in finalize; no table left', async () => {
    const before = await tablesLeft();
    writeFileSync(
      p('empty.geojson'),
      JSON.stringify({
        type: 'FeatureCollection',
        features: [1, 2, 3].map((i) => ({
          type: 'Feature',
          properties: { i },
          geometry: { type: 'Polygon', coordinates: [] },
        })),
      }),
    );
    const { job } = await ingest('empty.geojson', 'empty');
    expect(job.error).toMatchObject({ code: 'NO_FEATURES_WRITTEN', stage: 'finalize' });
    expect(await tablesLeft()).toEqual(before);
  });
});
