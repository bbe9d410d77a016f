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

/** A worker child process on the test's ledger; resolves once it polls. */
function startWorker(schema: string): Promise<ChildProcess> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', WORKER, schema], {
      cwd: path.join(import.meta.dirname, '..'),
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    children.push(child);
    let out = '';
    const timer = setTimeout(() => reject(new Error(`worker not ready: ${out}`)), 60_000);
    child.stdout!.on('data', (d: Buffer) => {
      out += d;
      if (out.includes('ready')) {
        clearTimeout(timer);
        resolve(child);
      }
    });
    child.stderr!.on('data', (d: Buffer) => (out += d));
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`worker exited with ${code}: ${out}`));
    });
  });
}

beforeAll(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'cm-tiled-kill-'));
  await storage.ensureContainer('bronze');
  // The API side only: every task runs in worker child processes.
  tm = await createTestMachine({ plugins: [processRaster], worker: false });
});
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
    await storage.uploadFile('bronze', blob, fx.demUtm(dir, 1500));
    const first = await startWorker(tm.schema);
    const { jobId } = await tm.submit('process_raster', { blob_name: blob, tiled_threshold_mb: 0, window_size: 384 });
    let killed: string | undefined;
    for (let i = 0; !killed; i++) {
      const tasks = await tm.tasks(jobId, { stage: 2 });
      const running = tasks.find((t) => t.status === 'processing');
      if (tasks.filter((t) => t.status === 'completed').length >= 2 && running) {
        first.kill('SIGKILL');
        killed = running.key;
      }
      if (i > 1200) throw new Error('the windows never got going');
      await new Promise((r) => setTimeout(r, 20));
    }
    await new Promise((r) => (first.exitCode !== null ? r(null) : first.once('exit', r)));
    await startWorker(tm.schema);
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
