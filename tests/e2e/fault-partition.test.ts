import { createTestMachine, startPostgres, type PgInstance, type TestMachine } from '@coremachine/test-kit';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ensureRunsTable, faultPlugins } from '../fixtures/fault-jobs.ts';
import { runsOf, sleep, startFaultWorker, until, type WorkerProcess } from './fault-helpers.ts';
import { startTcpProxy, type TcpProxy } from './tcp-proxy.ts';

// A worker cut off from PostgreSQL mid-task: worker A reaches its own PostgreSQL only through a
// TCP proxy on 127.0.0.1, which the test cuts (every connection destroyed, new ones refused) while
// A runs two tasks, and restores later. A loses its leases, worker B (direct connection) re-runs
// the tasks, and A's late outcomes are refused by the lease fence once its connection returns:
// each task settles once, the stage and the job advance once, and neither process exits.
describe('a worker partitioned from PostgreSQL', () => {
  let pgi: PgInstance;
  let tm: TestMachine;
  let proxy: TcpProxy;
  const workers: WorkerProcess[] = [];
  const config = { leaseSeconds: 5, stallSeconds: 5 };
  const FIRST_RUN_MS = 16_000;

  beforeAll(async () => {
    pgi = await startPostgres();
    tm = await createTestMachine({ plugins: faultPlugins, worker: false, connectionString: pgi.url, config });
    await ensureRunsTable(tm.pool);
    proxy = await startTcpProxy(pgi.port);
  }, 60_000);
  afterAll(async () => {
    for (const w of workers) w.child.kill('SIGKILL');
    await proxy?.close();
    await tm?.close({ keepSchema: true }).catch(() => {});
    await pgi?.destroy();
  });

  const s = () => `"${tm.schema}"`;
  const runningOn = async (jobId: string) =>
    (
      await tm.pool.query<{ key: string; worker_id: string; attempts: number }>(
        `SELECT key, worker_id, attempts FROM ${s()}.tasks WHERE job_id = $1 AND status = 'processing' ORDER BY key`,
        [jobId],
      )
    ).rows;

  it('loses its leases, B re-runs the tasks, its late outcomes are refused, each task settles once', async () => {
    const viaProxy = pgi.url.replace(`:${pgi.port}/`, `:${proxy.port}/`);
    expect(viaProxy).not.toBe(pgi.url);
    const a = await startFaultWorker(viaProxy, tm.schema, config);
    workers.push(a);
    // Both tasks' first runs work 16 s (on A); later runs 300 ms.
    const { jobId } = await tm.submit('effect_job', { n: 2, first_sleep_ms: FIRST_RUN_MS, sleep_ms: 300, tag: 'cut' });
    await until(
      async () => (await runningOn(jobId)).filter((r) => r.worker_id === a.id).length === 2,
      20_000,
      'A runs both',
    );
    const startedAt = Date.now();
    const b = await startFaultWorker(pgi.url, tm.schema, config);
    workers.push(b);

    proxy.cut();
    const cutAt = Date.now();
    const acceptedBeforeCut = proxy.stats.accepted;
    // B's lease sweep re-queues both tasks once A's 5 s leases lapse, re-runs and settles them.
    const job = await tm.waitFor(jobId, { timeoutMs: 30_000 });
    const completedAt = Date.now();
    expect(job.status).toBe('completed');
    expect(completedAt - cutAt).toBeGreaterThanOrEqual(4_000); // a lease had to lapse first
    // A's first runs are still going (they work 16 s): the takeover did not wait for them.
    expect(completedAt - startedAt).toBeLessThan(FIRST_RUN_MS);
    expect(proxy.stats.refused).toBeGreaterThan(0); // A tried to reach PostgreSQL meanwhile

    proxy.restore();
    // A's first runs end (or are aborted for their lost leases) and try to settle: refused.
    await sleep(Math.max(0, startedAt + FIRST_RUN_MS - Date.now()) + 5_000);
    expect(proxy.stats.accepted).toBeGreaterThan(acceptedBeforeCut); // A is connected again

    const tasks = await tm.tasks(jobId);
    expect(tasks.map((t) => [t.key, t.status, t.attempts])).toEqual([
      ['00000', 'completed', 2],
      ['00001', 'completed', 2],
    ]);
    const after = (await tm.machine.getJob(jobId))!;
    expect(after.status).toBe('completed');
    expect(after.result).toEqual({ done: 2 });
    expect(after.stages[0]).toMatchObject({ total: 2, completed: 2, failed: 0, status: 'completed' });
    const events = await tm.machine.events(jobId);
    const count = (kind: string) => events.filter((e) => e.kind === kind).length;
    expect(count('task_lease_expired')).toBe(2);
    expect(count('stage_completed')).toBe(1);
    expect(count('job_completed')).toBe(1);
    // The runs: attempt 1 on A (whose outcome never counted), attempt 2 on B, finished.
    const runs = await runsOf(tm.pool, jobId);
    for (const key of ['00000', '00001']) {
      const mine = runs.filter((r) => r.task_key === key);
      expect(mine.map((r) => [r.attempt, r.pid])).toEqual([
        [1, a.child.pid],
        [2, b.child.pid],
      ]);
      expect(mine[1]!.finished_at).not.toBeNull();
    }

    // No process exited; A works again over the restored connection (B gone, A alone).
    expect(workers.map((w) => (w.child.exitCode === null ? 'alive' : w.output().slice(-3000)))).toEqual([
      'alive',
      'alive',
    ]);
    b.child.kill('SIGKILL');
    await b.exited;
    const again = await tm.submit('effect_job', { n: 3, sleep_ms: 50, tag: 'after-cut' });
    const next = await tm.waitFor(again.jobId, { timeoutMs: 30_000 });
    expect(next.status).toBe('completed');
    expect(new Set((await runsOf(tm.pool, again.jobId)).map((r) => r.pid))).toEqual(new Set([a.child.pid]));
    expect(a.child.exitCode).toBeNull();
  });
});
