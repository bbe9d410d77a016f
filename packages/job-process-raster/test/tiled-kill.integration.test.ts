import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { checkCog, rasterFixtures as fx } from '@coremachine/geo/raster';
import { createStorage, storageConfigFromEnv } from '@coremachine/storage';
import { createTestMachine, type TestMachine } from '@coremachine/test-kit';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import processRaster, { tiledConfig, tmpPrefix } from '../src/index.ts';

const storage = createStorage(storageConfigFromEnv());
const prefix = `test-tiled-kill-${randomBytes(4).toString('hex')}`;
const WORKER = path.join(import.meta.dirname, 'worker-process.ts');
let dir: string;
let tm: TestMachine;
const children: ChildProcess[] = [];
let source: string;
let first: WorkerChild;
let second: WorkerChild;

interface WorkerChild {
  child: ChildProcess;
  /** Resolves once the child prints `line` ("started": machine up; "ready": worker polling). */
  printed(line: 'started' | 'ready'): Promise<void>;
}

/**
 * A worker child process on the test's ledger; `held`: its machine starts at once, its worker
 * only on a line on stdin (see worker-process.ts).
 */
function spawnWorker(schema: string, held = false): WorkerChild {
  const child = spawn(process.execPath, ['--import', 'tsx', WORKER, schema, ...(held ? ['--held'] : [])], {
    cwd: path.join(import.meta.dirname, '..'),
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  children.push(child);
  let out = '';
  child.stdout!.on('data', (d: Buffer) => (out += d));
  child.stderr!.on('data', (d: Buffer) => (out += d));
  const printed = (line: string) =>
    new Promise<void>((resolve, reject) => {
      const check = () => {
        if (!out.split('\n').includes(line)) return;
        done();
        resolve();
      };
      const exited = (code: number | null) => {
        done();
        reject(new Error(`worker exited with ${code} before "${line}": ${out}`));
      };
      const done = () => {
        child.stdout!.off('data', check);
        child.off('exit', exited);
      };
      child.stdout!.on('data', check);
      child.once('exit', exited);
      check();
    });
  return { child, printed };
}

beforeAll(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'cm-tiled-kill-'));
  await storage.ensureContainer('bronze');
  // The API side only: every task runs in worker child processes.
  tm = await createTestMachine({ plugins: [processRaster], worker: false });
  // Both workers start here, side by side: starting a child (loading and transpiling the
  // modules) takes several seconds of CPU, over a minute on a loaded machine, and is no part of
  // what the test measures. The second one waits to poll until the first is killed.
  first = spawnWorker(tm.schema);
  second = spawnWorker(tm.schema, true);
  source = fx.demUtm(dir, 1500);
  await Promise.all([first.printed('ready'), second.printed('started')]);
}, 180_000);
afterAll(async () => {
  for (const c of children) if (c.exitCode === null) c.kill('SIGKILL');
  await tm?.close();
  for (const c of ['bronze', 'silver'])
    for await (const b of storage.list(c, { prefix: `${prefix}/` })) await storage.delete(c, b.name);
  await rm(dir, { recursive: true, force: true });
});

describe('process_raster tiled: a worker killed in the middle of a window', () => {
  it('re-runs that window alone on another worker; the others ran once; the COG is whole', async () => {
    const blob = `${prefix}/dem.tif`;
    await storage.uploadFile('bronze', blob, source);
    const { jobId } = await tm.submit('process_raster', { blob_name: blob, tiled_threshold_mb: 0, window_size: 384 });
    let killed: string | undefined;
    const deadline = Date.now() + 60_000;
    while (!killed) {
      const tasks = await tm.tasks(jobId, { stage: 2 });
      const running = tasks.find((t) => t.status === 'processing');
      if (tasks.filter((t) => t.status === 'completed').length >= 2 && running) {
        first.child.kill('SIGKILL');
        killed = running.key;
      }
      if (Date.now() > deadline) throw new Error('the windows never got going');
      await new Promise((r) => setTimeout(r, 20));
    }
    await new Promise((r) => (first.child.exitCode !== null ? r(null) : first.child.once('exit', r)));
    second.child.stdin!.write('go\n');
    await second.printed('ready');
    const job = await tm.waitFor(jobId, { timeoutMs: 90_000 });
    expect(job.status, JSON.stringify(job.error)).toBe('completed');
    const windows = await tm.tasks(jobId, { stage: 2 });
    expect(windows.length).toBeGreaterThan(8);
    const again = windows.filter((t) => t.attempts > 1).map((t) => [t.key, t.attempts]);
    expect(again).toEqual([[killed, 2]]);
    expect(windows.every((t) => t.status === 'completed')).toBe(true);
    const cog = (job.result as any).cog;
    const local = path.join(dir, 'out.tif');
    await storage.downloadToFile(cog.cog_container, cog.cog_blob, local);
    expect((await checkCog(local)).errors).toEqual([]);
    const left: string[] = [];
    for await (const b of storage.list(tiledConfig().tmpContainer, { prefix: tmpPrefix('process_raster', jobId) }))
      left.push(b.name);
    expect(left).toEqual([]);
  }, 120_000);
});
