import { createTestMachine, startPostgres, type PgInstance, type TestMachine } from '@coremachine/test-kit';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ensureRunsTable, faultPlugins } from '../fixtures/fault-jobs.ts';
import { runsOf, sleep, until } from './fault-helpers.ts';

// The hangs: a retry that crosses a cancel still reaching a handler, a hung handler, a stage
// whose lease is shorter than the engine's. Each must end, and each task's work run as often as
// the scenario needs and no more. Own PostgreSQL; the worker runs in this process.
describe('no job hangs', () => {
  let pgi: PgInstance;
  let tm: TestMachine;

  beforeAll(async () => {
    pgi = await startPostgres();
    tm = await createTestMachine({
      plugins: faultPlugins,
      connectionString: pgi.url,
      // The engine's lease stays at 60 s: the lease_job stage's own 10 s lease must be honoured.
      config: { leaseSeconds: 60, abortGraceSeconds: 1, cancelPollMs: 250, stallSeconds: 4 },
    });
    await ensureRunsTable(tm.pool);
  });
  afterAll(async () => {
    await tm?.close({ keepSchema: true });
    await pgi?.destroy();
  });

  const processing = async (jobId: string, n: number) =>
    until(
      async () =>
        (
          await tm.pool.query(
            `SELECT count(*)::int AS n FROM "${tm.schema}".tasks WHERE job_id = $1 AND status = 'processing'`,
            [jobId],
          )
        ).rows[0].n === n,
      20_000,
      `${n} task(s) running`,
    );

  it.concurrent.each([0, 400, 900, 1_800])(
    'retry %i ms after cancel, while the handler is slow to give up: the job completes, never stuck',
    async (delay) => {
      // First runs work 3 s and take 1 s to give up once aborted; later runs are quick.
      const { jobId } = await tm.submit('effect_job', {
        n: 2,
        first_sleep_ms: 3_000,
        sleep_ms: 20,
        give_up_ms: 1_000,
        tag: `race-${delay}`,
      });
      await processing(jobId, 2);
      await tm.machine.cancel(jobId);
      await sleep(delay);
      expect((await tm.machine.retry(jobId)).status).toBe('processing');
      const job = await tm.waitFor(jobId, { timeoutMs: 20_000 });
      expect(job.status).toBe('completed');
      // Settled by the settle itself, not rescued later by the stall sweep's repair.
      const repairs = (await tm.machine.events(jobId)).filter(
        (e) => e.kind === 'tasks_requeued' || e.kind === 'stage_repaired',
      );
      expect(repairs).toHaveLength(0);
      expect(job.stages[0]).toMatchObject({ total: 2, completed: 2, failed: 0, status: 'completed' });
      const runs = await runsOf(tm.pool, jobId);
      // Each task's work finished once; a run aborted by the cancel never finished.
      for (const key of ['00000', '00001']) {
        expect(runs.filter((r) => r.task_key === key && r.finished_at !== null)).toHaveLength(1);
      }
      const tasks = await tm.tasks(jobId);
      expect(tasks.map((t) => t.status)).toEqual(['completed', 'completed']);
    },
  );

  it('a running stage left with cancelled tasks is repaired by the stall sweep, as an event', async () => {
    const job = await tm.submitAndWait('effect_job', { n: 3, sleep_ms: 10, tag: 'repair' });
    expect(job.status).toBe('completed');
    // Recreate by hand the state the cancel/retry race used to leave: the job and its stage
    // running, one task settled cancelled, the stage counters short of the total.
    const s = `"${tm.schema}"`;
    await tm.pool.query(
      `UPDATE ${s}.jobs SET status = 'processing', result = NULL, completed_at = NULL WHERE id = $1`,
      [job.id],
    );
    await tm.pool.query(
      `UPDATE ${s}.stages SET status = 'processing', completed = 2, completed_at = NULL WHERE job_id = $1`,
      [job.id],
    );
    await tm.pool.query(
      `UPDATE ${s}.tasks SET status = 'cancelled', completed_at = now() - interval '1 minute' WHERE job_id = $1 AND key = '00001'`,
      [job.id],
    );
    const repaired = await tm.waitFor(job.id, { timeoutMs: 60_000 });
    expect(repaired.status).toBe('completed');
    expect(repaired.stages[0]).toMatchObject({ total: 3, completed: 3, status: 'completed' });
    const events = await tm.machine.events(job.id);
    expect(events.filter((e) => e.kind === 'tasks_requeued').map((e) => e.message)).toEqual([
      '1 cancelled task(s) in a running stage (cancel and retry crossed); queued again',
    ]);
  });

  it.concurrent('a hung handler is aborted at its stage timeout, fails TASK_TIMEOUT and is retried', async () => {
    // timeout_job: 1 s limit. Key 0 hangs for good ignoring its signal; the engine gives up on it
    // abortGraceSeconds after the abort. The second run is quick.
    const t0 = Date.now();
    const job = await tm.submitAndWait('timeout_job', { n: 2, hang_first: true, sleep_ms: 10, tag: 'hung' });
    const elapsed = Date.now() - t0;
    expect(job.status).toBe('completed');
    expect(elapsed).toBeLessThan(10_000);
    const tasks = await tm.tasks(job.id);
    expect(tasks.map((t) => t.attempts)).toEqual([2, 2]);
    const events = await tm.machine.events(job.id);
    const retried = events.filter((e) => e.kind === 'task_retried');
    expect(retried).toHaveLength(2);
    for (const e of retried) expect(e.message).toContain('TASK_TIMEOUT');
    const runs = await runsOf(tm.pool, job.id);
    expect(runs.map((r) => [r.task_key, r.attempt, r.finished_at !== null])).toEqual([
      ['00000', 1, false],
      ['00000', 2, true],
      ['00001', 1, false],
      ['00001', 2, true],
    ]);
  });

  it.concurrent('a handler that honours its signal is aborted at the timeout and retried', async () => {
    const job = await tm.submitAndWait('timeout_job', { n: 1, first_sleep_ms: 30_000, sleep_ms: 10, tag: 'slow' });
    expect(job.status).toBe('completed');
    const [task] = await tm.tasks(job.id);
    expect(task!.attempts).toBe(2);
    const runs = await runsOf(tm.pool, job.id);
    expect(runs).toHaveLength(2);
    // Aborted at 1 s, not after its 30 s of work.
    expect(runs[1]!.started_at.getTime() - runs[0]!.started_at.getTime()).toBeLessThan(5_000);
  });

  it.concurrent('a stage with a 10 s lease runs a healthy 14 s task once', async () => {
    const job = await tm.submitAndWait('lease_job', { n: 1, sleep_ms: 14_000, tag: 'lease' }, { timeoutMs: 60_000 });
    expect(job.status).toBe('completed');
    const [task] = await tm.tasks(job.id);
    expect(task!.attempts).toBe(1);
    expect(await runsOf(tm.pool, job.id)).toHaveLength(1);
    const events = await tm.machine.events(job.id);
    expect(events.filter((e) => e.kind === 'task_lease_expired')).toHaveLength(0);
  });
});
