import { createTestMachine, startPostgres, type PgInstance, type TestMachine } from '@coremachine/test-kit';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ensureRunsTable, faultPlugins } from '../fixtures/fault-jobs.ts';
import { runsOf, startFaultWorker, until, type WorkerProcess } from './fault-helpers.ts';

// SIGTERM: a worker stops fetching, lets running tasks finish within CM_SHUTDOWN_GRACE_SECONDS
// (heartbeating them), then aborts and releases the rest (attempt refunded) and exits; a second
// SIGTERM exits at once. Real worker processes on their own PostgreSQL.
describe('graceful shutdown', () => {
  let pgi: PgInstance;
  let tm: TestMachine;
  const started: WorkerProcess[] = [];
  const config = { leaseSeconds: 5 };

  beforeAll(async () => {
    pgi = await startPostgres();
    tm = await createTestMachine({ plugins: faultPlugins, worker: false, connectionString: pgi.url, config });
    await ensureRunsTable(tm.pool);
  });
  afterAll(async () => {
    for (const w of started) if (w.child.exitCode === null) w.child.kill('SIGKILL');
    await tm?.close({ keepSchema: true });
    await pgi?.destroy();
  });

  const worker = async (graceSeconds: number) => {
    const w = await startFaultWorker(pgi.url, tm.schema, config, { CM_SHUTDOWN_GRACE_SECONDS: String(graceSeconds) });
    started.push(w);
    return w;
  };
  const runningOn = (jobId: string) =>
    until(
      async () =>
        (
          await tm.pool.query(
            `SELECT worker_id FROM "${tm.schema}".tasks WHERE job_id = $1 AND status = 'processing'`,
            [jobId],
          )
        ).rows[0]?.worker_id as string | undefined,
      20_000,
      'task running',
    );

  it('a task longer than the grace is released, re-run once elsewhere, never twice at once', async () => {
    const a = await worker(2);
    const { jobId } = await tm.submit('effect_job', { n: 1, first_sleep_ms: 60_000, sleep_ms: 500, tag: 'beyond' });
    expect(await runningOn(jobId)).toBe(a.id);
    const b = await worker(30);
    const termAt = Date.now();
    a.child.kill('SIGTERM');
    const exit = await a.exited;
    expect(exit.code).toBe(0);
    // The grace (2 s), then the abort and the release: well under the task's 60 s.
    expect(exit.at - termAt).toBeGreaterThanOrEqual(1_900);
    expect(exit.at - termAt).toBeLessThan(6_000);
    expect(a.output()).toContain('stopped');
    const job = await tm.waitFor(jobId, { timeoutMs: 20_000 });
    expect(job.status).toBe('completed');
    const [task] = await tm.tasks(jobId);
    expect(task!.attempts).toBe(1); // the released run was refunded
    const runs = await runsOf(tm.pool, jobId);
    expect(runs.map((r) => [r.pid, r.finished_at !== null])).toEqual([
      [a.child.pid, false],
      [b.child.pid, true],
    ]);
    // The second run started only after the first worker had released the task.
    const events = await tm.machine.events(jobId);
    const released = events.find((e) => e.kind === 'task_released');
    expect(released).toBeDefined();
    expect(runs[1]!.started_at.getTime()).toBeGreaterThanOrEqual(Date.parse(released!.at));
  });

  const killAll = async () => {
    for (const w of started) if (w.child.exitCode === null) w.child.kill('SIGKILL');
    await Promise.all(started.map((w) => w.exited));
  };

  it('a task within the grace finishes before the worker exits', async () => {
    await killAll();
    const c = await worker(15);
    const { jobId } = await tm.submit('effect_job', { n: 1, first_sleep_ms: 2_000, tag: 'within' });
    expect(await runningOn(jobId)).toBe(c.id);
    const termAt = Date.now();
    c.child.kill('SIGTERM');
    const exit = await c.exited;
    expect(exit.code).toBe(0);
    expect(exit.at - termAt).toBeLessThan(5_000);
    const [task] = await tm.tasks(jobId);
    expect([task!.status, task!.attempts]).toEqual(['completed', 1]);
    const runs = await runsOf(tm.pool, jobId);
    expect(runs.map((r) => [r.pid, r.finished_at !== null])).toEqual([[c.child.pid, true]]);
    // The job's last step (aggregate) waits for the next worker, which finishes it.
    await worker(30);
    expect((await tm.waitFor(jobId, { timeoutMs: 20_000 })).status).toBe('completed');
  });

  it('a second SIGTERM exits at once', async () => {
    await killAll();
    const d = await worker(60);
    const { jobId } = await tm.submit('effect_job', { n: 1, first_sleep_ms: 60_000, tag: 'twice' });
    expect(await runningOn(jobId)).toBe(d.id);
    d.child.kill('SIGTERM');
    await until(async () => d.output().includes('draining'), 5_000, 'draining');
    const secondAt = Date.now();
    d.child.kill('SIGTERM');
    const exit = await d.exited;
    expect(exit.code).toBe(1);
    expect(exit.at - secondAt).toBeLessThan(1_000);
  });

  it('a zombie (SIGSTOP past its lease) finishing late has its settle refused', async () => {
    await killAll();
    const z = await worker(30);
    const { jobId } = await tm.submit('effect_job', { n: 1, first_sleep_ms: 3_000, sleep_ms: 3_000, tag: 'zombie' });
    expect(await runningOn(jobId)).toBe(z.id);
    z.child.kill('SIGSTOP');
    const y = await worker(30);
    // Y's lease sweep re-queues the task once Z's 5 s lease lapses, and runs it.
    const rerun = await until(
      async () =>
        (
          await tm.pool.query(
            `SELECT worker_id FROM "${tm.schema}".tasks WHERE job_id = $1 AND status = 'processing' AND attempts = 2`,
            [jobId],
          )
        ).rows[0]?.worker_id as string | undefined,
      30_000,
      'task re-run',
    );
    expect(rerun).toBe(y.id);
    z.child.kill('SIGCONT'); // Z's handler wakes up mid-run, finishes its sleep, tries to settle
    const job = await tm.waitFor(jobId, { timeoutMs: 30_000 });
    expect(job.status).toBe('completed');
    await new Promise((r) => setTimeout(r, 4_000)); // Z's late outcome has had time to arrive
    const [task] = await tm.tasks(jobId);
    expect([task!.status, task!.attempts]).toEqual(['completed', 2]);
    const after = (await tm.machine.getJob(jobId))!;
    expect(after.stages[0]).toMatchObject({ total: 1, completed: 1, failed: 0 });
    const events = await tm.machine.events(jobId);
    expect(events.filter((e) => e.kind === 'task_lease_expired')).toHaveLength(1);
    expect(events.filter((e) => e.kind === 'stage_completed')).toHaveLength(1);
    expect(events.filter((e) => e.kind === 'job_completed')).toHaveLength(1);
    expect(z.child.exitCode).toBeNull(); // the zombie lives on, harmless
    const runs = await runsOf(tm.pool, jobId);
    // Both ran the handler (Z may have been stopped before recording its start): one run each.
    expect(runs.map((r) => r.pid).sort()).toEqual([z.child.pid, y.child.pid].sort());
  });
});
