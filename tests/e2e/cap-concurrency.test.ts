import { createTestMachine, startPostgres, type PgInstance, type TestMachine } from '@coremachine/test-kit';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ensureRunsTable, faultPlugins, RUNS_TABLE } from '../fixtures/fault-jobs.ts';
import { runsOf, startFaultWorker, until, type WorkerProcess } from './fault-helpers.ts';

// The cluster-wide concurrency cap (`concurrencyLimits`, CM_CONCURRENCY_LIMITS): three real
// worker processes, each able to run 40 tasks at once, share jobs of capped types. Every run of a
// handler writes its start and end (cm_fault_runs); the most runs in progress at any instant must
// never pass the cap, and every task must run and settle once. An uncapped type in the same
// cluster shows what the workers do without a cap.
const limits = { effect_job: 4, 'lease_job.work': 2 };
const config = { leaseSeconds: 10, concurrencyLimits: limits };

/** The most handler runs of a job in progress at once (at each run's start, the runs not yet ended). */
async function maxConcurrent(tm: TestMachine, jobId: string): Promise<number> {
  const {
    rows: [r],
  } = await tm.pool.query(
    `SELECT max((SELECT count(*) FROM ${RUNS_TABLE} b
                 WHERE b.job_id = a.job_id AND b.started_at <= a.started_at AND COALESCE(b.finished_at, 'infinity') > a.started_at))::int AS n
     FROM ${RUNS_TABLE} a WHERE a.job_id = $1`,
    [jobId],
  );
  return r.n as number;
}

describe('cluster-wide concurrency cap', () => {
  let pgi: PgInstance;
  let tm: TestMachine;
  const workers: WorkerProcess[] = [];

  beforeAll(async () => {
    pgi = await startPostgres();
    tm = await createTestMachine({ plugins: faultPlugins, worker: false, connectionString: pgi.url, config });
    await ensureRunsTable(tm.pool);
    workers.push(...(await Promise.all([1, 2, 3].map(() => startFaultWorker(pgi.url, tm.schema, config)))));
  });
  afterAll(async () => {
    for (const w of workers) w.child.kill('SIGKILL');
    await tm?.close({ keepSchema: true }).catch(() => {});
    await pgi?.destroy();
  });

  it('3 worker processes never run more tasks of a capped type or stage at once than the cap; each task runs once', async () => {
    const n = 40;
    const capped = await tm.submit('effect_job', { n, sleep_ms: 150, tag: 'cap' });
    const stageCapped = await tm.submit('lease_job', { n: 20, sleep_ms: 150, tag: 'stage-cap' });
    const free = await tm.submit('timeout_job', { n, sleep_ms: 300, tag: 'no-cap' });
    // jobs.get says what the queued tasks wait for.
    const summary = await until(
      async () => {
        const s = (await tm.machine.getJob(capped.jobId))?.stages[0]?.waiting?.summary;
        return s?.includes('queued') ? s : null;
      },
      20_000,
      'queued tasks of the capped job',
    );
    expect(summary).toContain('waiting for a free worker slot (cluster-wide cap: at most 4 effect_job tasks at once)');
    for (const { jobId } of [capped, stageCapped, free])
      expect((await tm.waitFor(jobId, { timeoutMs: 60_000 })).status).toBe('completed');

    const [cappedMax, stageMax, freeMax] = await Promise.all(
      [capped, stageCapped, free].map(({ jobId }) => maxConcurrent(tm, jobId)),
    );
    expect(cappedMax).toBeLessThanOrEqual(4);
    expect(cappedMax).toBeGreaterThanOrEqual(2); // the cap is a limit, not a serialisation
    expect(stageMax).toBeLessThanOrEqual(2);
    // Without a cap the same workers run far more at once: the measure sees concurrency.
    expect(freeMax).toBeGreaterThan(4);

    for (const [{ jobId }, count] of [
      [capped, n],
      [stageCapped, 20],
      [free, n],
    ] as const) {
      const runs = await runsOf(tm.pool, jobId);
      expect(runs.length).toBe(count);
      expect(new Set(runs.map((r) => r.task_key)).size).toBe(count);
      expect(runs.every((r) => r.finished_at !== null && r.attempt === 1)).toBe(true);
      const tasks = await tm.tasks(jobId);
      expect(tasks.map((t) => [t.status, t.attempts])).toEqual(Array.from({ length: count }, () => ['completed', 1]));
    }
    // The capped tasks ran in more than one process: the cap holds across processes.
    expect(new Set((await runsOf(tm.pool, capped.jobId)).map((r) => r.pid)).size).toBeGreaterThan(1);
    expect(workers.every((w) => w.child.exitCode === null)).toBe(true);
  });
});
