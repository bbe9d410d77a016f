import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  createStorage,
  ensureAzurite,
  parseStorageConfig,
  type AzuriteHandle,
  type BlobStorage,
} from '@coremachine/storage';
import { startPostgres, type PgInstance } from '@coremachine/test-kit';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort, startServerProcess, type ServerProcess } from './fault-servers.ts';
import { sleep, until } from './fault-helpers.ts';

// A frozen storage endpoint (SIGSTOP of an Azurite of this test's own) while storage-using jobs
// run in real server processes (one API + worker, one worker) on a PostgreSQL of its own.
// - With small configured budgets (1.5 s per request, 4 s per call) a 15 s freeze outlasts several
//   whole budgets: every storage call ends in STORAGE_TIMEOUT instead of hanging and the tasks are
//   retried by the engine's policy meanwhile.
// - With the default budgets (30 s per request, 120 s per call), the 60 s freeze users meet: calls
//   wait it out within their budget.
// Either way /health answers within 2 s saying storage is unreachable, no process exits, and once
// Azurite runs again the jobs complete with the right results.
const BLOBS = 40;

interface FreezeCase {
  name: string;
  freezeMs: number;
  /** Storage and retry settings of the server processes. */
  env: Record<string, string>;
  /** Retries the summary's task must have made while Azurite was stopped. */
  minRetriesInFreeze: number;
  /** Bounds on the attempts the summary's task took in all. */
  minAttempts: number;
  maxAttempts: number;
  settleMs: number;
}

const cases: FreezeCase[] = [
  {
    name: 'small budgets, 15 s freeze: tasks time out and retry',
    freezeMs: 15_000,
    env: {
      CM_STORAGE_REQUEST_TIMEOUT_MS: '1500',
      CM_STORAGE_TOTAL_TIMEOUT_MS: '4000',
      CM_STORAGE_MAX_ATTEMPTS: '3',
      CM_STORAGE_RETRY_BASE_DELAY_MS: '200',
      CM_STORAGE_RETRY_MAX_DELAY_MS: '1000',
      CM_MAX_ATTEMPTS: '12',
      CM_RETRY_BASE_DELAY_MS: '500',
      CM_RETRY_MAX_DELAY_MS: '2000',
    },
    minRetriesInFreeze: 2,
    minAttempts: 3,
    maxAttempts: 11,
    settleMs: 30_000,
  },
  {
    name: 'default budgets, 60 s freeze: calls wait it out',
    freezeMs: 60_000,
    env: {},
    minRetriesInFreeze: 0,
    minAttempts: 1,
    maxAttempts: 2,
    settleMs: 90_000,
  },
];

/** One case's own PostgreSQL, Azurite (40 blobs under freeze/) and server processes (an API + worker, a worker). */
async function startStack(c: FreezeCase) {
  const servers: ServerProcess[] = [];
  const dir = mkdtempSync(join(tmpdir(), 'cm-fault-storage-'));
  const pgi: PgInstance = await startPostgres();
  let azurite: AzuriteHandle | undefined;
  const close = async () => {
    if (azurite?.pid) process.kill(azurite.pid, 'SIGCONT');
    for (const s of servers) s.child.kill('SIGKILL');
    await azurite?.stop();
    await pgi.destroy();
    rmSync(dir, { recursive: true, force: true });
  };
  try {
    azurite = await ensureAzurite({ port: await freePort(), location: join(dir, 'azurite') });
    const storage: BlobStorage = createStorage(parseStorageConfig({ kind: 'azurite', endpoint: azurite.endpoint }));
    await storage.ensureContainer('bronze');
    await Promise.all(
      Array.from({ length: BLOBS }, (_, i) =>
        storage.uploadData('bronze', `freeze/f${String(i).padStart(3, '0')}.txt`, 'x'.repeat(100 + i)),
      ),
    );
    const env = {
      DATABASE_URL: pgi.url,
      CM_EMBEDDED_AZURITE: 'false',
      CM_AZURITE_ENDPOINT: azurite.endpoint,
      ...c.env,
      CM_LOG_LEVEL: 'warn',
    };
    servers.push(await startServerProcess({ ...env, CM_ROLE: 'all', CM_API_PORT: '0' }));
    servers.push(await startServerProcess({ ...env, CM_ROLE: 'worker' }));
  } catch (err) {
    await close();
    throw err;
  }

  const api = async (method: string, path: string, body?: unknown) => {
    const res = await fetch(`${servers[0]!.url}/api/v1${path}`, {
      method,
      headers: body ? { 'content-type': 'application/json' } : {},
      ...(body ? { body: JSON.stringify(body) } : {}),
      signal: AbortSignal.timeout(10_000),
    });
    return { status: res.status, body: (await res.json()) as any };
  };
  const health = async () => {
    const t0 = Date.now();
    const res = await fetch(`${servers[0]!.url}/health`, { signal: AbortSignal.timeout(10_000) });
    return { ms: Date.now() - t0, status: res.status, body: (await res.json()) as { storage: { ok: boolean } } };
  };
  const settled = async (jobId: string) =>
    until(
      async () => {
        const j = (await api('GET', `/jobs/${jobId}`)).body;
        return j.status === 'completed' || j.status === 'failed' ? j : null;
      },
      c.settleMs,
      `job ${jobId} settled`,
    );
  return { azurite: azurite!, servers, api, health, settled, close };
}

interface Event {
  kind: string;
  at: string;
  message: string | null;
}

// Both cases at once, each on its own infrastructure: the file takes as long as the 60 s one.
describe('a frozen storage endpoint', () => {
  const stacks = new Map<string, Awaited<ReturnType<typeof startStack>>>();
  beforeAll(async () => {
    const started = await Promise.allSettled(cases.map(async (c) => stacks.set(c.name, await startStack(c))));
    const failed = started.find((r) => r.status === 'rejected');
    if (failed) throw failed.reason;
  }, 180_000);
  afterAll(async () => {
    await Promise.all([...stacks.values()].map((s) => s.close()));
  });

  it.concurrent.each(cases)(
    '$name: no process exits, /health answers within 2 s, storage calls end within their budget, the jobs complete after SIGCONT',
    async (c) => {
      const { azurite, servers, api, health, settled } = stacks.get(c.name)!;
      // Before: healthy, and a summary runs in well under a second.
      expect((await health()).status).toBe(200);
      const before = await api('POST', '/jobs', {
        type: 'summarize_container',
        params: { container_name: 'bronze', filter: { prefix: 'freeze/' } },
      });
      expect(before.status).toBe(201);
      const b = await settled(before.body.jobId);
      expect(b.status).toBe('completed');
      expect(b.result.summary.total_files).toBe(BLOBS);

      process.kill(azurite.pid!, 'SIGSTOP');
      const frozenAt = Date.now();
      // Two storage-using jobs submitted into the freeze: a summary (one listing task) and an
      // inventory that stats every blob (verify_blobs).
      const summary = await api('POST', '/jobs', {
        type: 'summarize_container',
        params: { container_name: 'bronze', filter: { prefix: 'freeze/', extensions: ['txt'] } },
      });
      const inventory = await api('POST', '/jobs', {
        type: 'list_container_contents',
        params: { container_name: 'bronze', filter: { prefix: 'freeze/' }, verify_blobs: true },
      });
      expect([summary.status, inventory.status]).toEqual([201, 201]);

      // /health during the freeze: within 2 s every time, storage reported unreachable.
      const probes: { ms: number; status: number; storageOk: boolean }[] = [];
      while (Date.now() - frozenAt < c.freezeMs) {
        const h = await health();
        probes.push({ ms: h.ms, status: h.status, storageOk: h.body.storage.ok });
        await sleep(2_000);
      }
      // Meanwhile (small budgets) the summary's task failed STORAGE_TIMEOUT and was retried, while
      // Azurite was still stopped (no call waited for the endpoint to come back).
      const duringFreeze = (await api('GET', `/jobs/${summary.body.jobId}/events?afterId=0&limit=500`)).body as Event[];
      const thawedAt = Date.now();
      process.kill(azurite.pid!, 'SIGCONT');

      expect(probes.length).toBeGreaterThanOrEqual(5);
      for (const p of probes) expect(p).toMatchObject({ status: 503, storageOk: false });
      expect(Math.max(...probes.map((p) => p.ms))).toBeLessThan(2_000);
      const retriedInFreeze = duringFreeze.filter((e) => e.kind === 'task_retried' && Date.parse(e.at) < thawedAt);
      expect(retriedInFreeze.length).toBeGreaterThanOrEqual(c.minRetriesInFreeze);
      for (const e of retriedInFreeze) expect(e.message).toContain('STORAGE_TIMEOUT');

      const [s, inv] = await Promise.all([summary, inventory].map((r) => settled(r.body.jobId)));
      expect(s.status).toBe('completed');
      expect(s.result.summary.total_files).toBe(BLOBS);
      expect(inv.status).toBe('completed');
      expect(inv.result.summary).toMatchObject({
        total_blobs_found: BLOBS,
        successful_analyses: BLOBS,
        failed_analyses: 0,
      });

      // Attempt counts: the summary's one task ran as often as its retried events say.
      const tasks = (await api('GET', `/jobs/${summary.body.jobId}/tasks?stage=1`)).body.items as {
        status: string;
        attempts: number;
      }[];
      const events = (await api('GET', `/jobs/${summary.body.jobId}/events?afterId=0&limit=500`)).body as Event[];
      const retried = events.filter((e) => e.kind === 'task_retried');
      expect(tasks).toHaveLength(1);
      expect(tasks[0]!.status).toBe('completed');
      expect(tasks[0]!.attempts).toBe(retried.length + 1);
      expect(tasks[0]!.attempts).toBeGreaterThanOrEqual(c.minAttempts);
      expect(tasks[0]!.attempts).toBeLessThanOrEqual(c.maxAttempts);

      // After the freeze: healthy again, and no process exited.
      await until(async () => (await health()).status === 200, 10_000, 'healthy again');
      expect(servers.map((p) => (p.child.exitCode === null ? 'alive' : p.output().slice(-3000)))).toEqual([
        'alive',
        'alive',
      ]);
      expect(servers.map((p) => p.output()).join('')).not.toMatch(/UNCAUGHT|unhandled/i);
    },
    Math.max(...cases.map((c) => c.freezeMs + c.settleMs)) + 60_000,
  );
});
