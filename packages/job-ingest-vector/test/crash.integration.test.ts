import { spawn, execFileSync, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { once } from 'node:events';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createStorage, storageConfigFromEnv } from '@coremachine/storage';
import { createTestMachine, type TestMachine } from '@coremachine/test-kit';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import ingestVector from '../src/index.ts';
import { makeFixtures, type Fixtures } from './fixtures.ts';

const PKG = fileURLToPath(new URL('..', import.meta.url));
const WORKER = join(PKG, 'test/worker-process.ts');
const N = 100_000;
const storage = createStorage(storageConfigFromEnv());
const container = `vc-${randomBytes(4).toString('hex')}`;
const vschema = `vc_${randomBytes(4).toString('hex')}`;
let fx: Fixtures;
let tm: TestMachine;
const children: ChildProcess[] = [];

/** Starts a worker process on the test's ledger and resolves once it polls. */
function startWorker(): Promise<ChildProcess> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [WORKER, tm.schema, vschema], {
      cwd: PKG,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    children.push(child);
    let out = '';
    const timer = setTimeout(() => reject(new Error(`worker not ready: ${out}`)), 60_000);
    child.stdout!.on('data', (d: Buffer) => {
      out += d;
      if (/ready/.test(out)) {
        clearTimeout(timer);
        resolve(child);
      }
    });
    child.stderr!.on('data', (d: Buffer) => (out += d));
    child.on('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`worker exited with ${code}: ${out}`));
    });
  });
}

beforeAll(async () => {
  fx = makeFixtures();
  const csv = fx.path('many.csv');
  const out = createWriteStream(csv);
  out.write('id,name,wkt\n');
  for (let i = 0; i < N; i++)
    if (!out.write(`${i},p${i},"POINT (${(i % 1000) * 0.01} ${Math.floor(i / 1000) * 0.01})"\n`))
      await once(out, 'drain');
  out.end();
  await once(out, 'finish');
  execFileSync('ogr2ogr', [
    '-f',
    'GPKG',
    fx.path('many.gpkg'),
    csv,
    '-oo',
    'GEOM_POSSIBLE_NAMES=wkt',
    '-oo',
    'KEEP_GEOM_COLUMNS=NO',
    '-oo',
    'AUTODETECT_TYPE=YES',
    '-a_srs',
    'EPSG:4326',
    '-nln',
    'many',
    '-nlt',
    'POINT',
  ]);
  await storage.ensureContainer(container);
  await storage.uploadFile(container, 'many.gpkg', fx.path('many.gpkg'));
  // The API side only: every task runs in a separate worker process.
  tm = await createTestMachine({
    plugins: [ingestVector],
    worker: false,
    services: { vector: { schemas: [vschema] } },
  });
}, 120_000);

afterAll(async () => {
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
  await tm?.pool.query(`drop schema if exists "${vschema}" cascade`);
  await tm?.close();
  await storage.deleteContainer(container).catch(() => {});
  fx?.cleanup();
});

describe('ingest_vector with a worker killed (SIGKILL) mid-load', () => {
  it('a new worker finishes the job and the table holds every feature exactly once', async () => {
    const first = await startWorker();
    const { jobId } = await tm.submit('ingest_vector', {
      container_name: container,
      blob_name: 'many.gpkg',
      table_name: 'many',
      schema: vschema,
      chunk_size: 10_000,
    });
    for (let i = 0; ; i++) {
      const {
        rows: [c],
      } = await tm.pool.query(
        `select count(*) filter (where status = 'completed')::int as done, count(*) filter (where status = 'processing')::int as running
           from "${tm.schema}".tasks where job_id = $1 and stage_index = 2`,
        [jobId],
      );
      if (c.done >= 2 && c.running > 0) break;
      if (i > 3000) throw new Error('the load stage never got going');
      await new Promise((r) => setTimeout(r, 20));
    }
    first.kill('SIGKILL');
    await once(first, 'exit');
    const {
      rows: [mid],
    } = await tm.pool.query(
      `select count(*)::int as n from "${tm.schema}".tasks where job_id = $1 and stage_index = 2 and status = 'processing'`,
      [jobId],
    );
    expect(mid.n).toBeGreaterThan(0);

    const second = await startWorker();
    try {
      const job = await tm.waitFor(jobId, { timeoutMs: 120_000 });
      expect(job.error, JSON.stringify(job.error)).toBeNull();
      expect(job.status).toBe('completed');
      expect(job.result).toMatchObject({ features_read: N, features_written: N, features_skipped: 0, chunks: 10 });
      const {
        rows: [t],
      } = await tm.pool.query(
        `select count(*)::int n, count(distinct fid)::int d, count(distinct name)::int names, min(fid)::int lo, max(fid)::int hi from "${vschema}".many`,
      );
      expect(t).toEqual({ n: N, d: N, names: N, lo: 1, hi: N });
      const leftovers = await tm.pool.query(
        `select tablename from pg_tables where schemaname = $1 and tablename like 'cm\\_%'`,
        [vschema],
      );
      expect(leftovers.rows).toEqual([]);
      const rerun = (await tm.tasks(jobId)).filter((task) => task.attempts > 1);
      expect(rerun.length).toBeGreaterThanOrEqual(mid.n);
    } finally {
      second.kill('SIGTERM');
      await once(second, 'exit');
    }
  }, 180_000);
});
