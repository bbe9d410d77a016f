import { createTestMachine, startPostgres, type PgInstance, type TestMachine } from '@coremachine/test-kit';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ensureRunsTable, faultPlugins, RUNS_TABLE } from '../fixtures/fault-jobs.ts';
import { sleep, startFaultWorker, until, type WorkerProcess } from './fault-helpers.ts';

// PostgreSQL restarted twice under a running 2,000-task job, two worker processes and this
// process as the API (submitting meanwhile): nothing crashes, the job completes, and every
// task's work ran to completion exactly once (a settlement that failed during an outage is
// retried until it commits, fenced by its lease, instead of the task being run again).
describe('PostgreSQL restarts during a job', () => {
  let pgi: PgInstance;
  let tm: TestMachine;
  const workers: WorkerProcess[] = [];
  const config = { leaseSeconds: 10, stallSeconds: 5 };

  beforeAll(async () => {
    pgi = await startPostgres();
    tm = await createTestMachine({ plugins: faultPlugins, worker: false, connectionString: pgi.url, config });
    await ensureRunsTable(tm.pool);
    workers.push(...(await Promise.all([0, 1].map(() => startFaultWorker(pgi.url, tm.schema, config)))));
  });
  afterAll(async () => {
    for (const w of workers) w.child.kill('SIGKILL');
    await tm?.close({ keepSchema: true }).catch(() => {});
    await pgi?.destroy();
  });

  it('two restarts: no process exits, the job completes, every handler ran to completion once', async () => {
    const { jobId } = await tm.submit('effect_job', { n: 2000, sleep_ms: 5, tag: 'restart' });
    const completed = () =>
      tm.pool
        .query(`SELECT count(*)::int AS n FROM ${RUNS_TABLE} WHERE job_id = $1 AND finished_at IS NOT NULL`, [jobId])
        .then((r) => r.rows[0].n as number);

    // The API keeps taking submissions through the outages.
    let submitting = true;
    const submitted: string[] = [];
    let refused = 0;
    const load = (async () => {
      for (let i = 0; submitting; i++) {
        await tm
          .submit('effect_job', { n: 1, tag: `load-${i}` })
          .then((r) => submitted.push(r.jobId))
          .catch(() => refused++);
        await sleep(50);
      }
    })();

    await until(async () => (await completed()) >= 300, 60_000, '300 tasks done');
    await pgi.restart({ downMs: 1_000 });
    await until(async () => (await completed()) >= 1_100, 60_000, '1,100 tasks done');
    await pgi.restart({ downMs: 1_000 });
    const job = await until(
      async () => {
        const j = await tm.machine.getJob(jobId);
        return j && j.status !== 'processing' && j.status !== 'queued' ? j : null;
      },
      90_000,
      'job settled',
    );
    submitting = false;
    await load;
    if (process.env['CM_PRINT_TIMINGS'])
      console.log(
        `2,000 tasks through two restarts: ${((Date.parse(job.completedAt!) - Date.parse(job.createdAt)) / 1000).toFixed(1)} s; ${refused} submits refused during the outages, ${submitted.length} accepted`,
      );

    expect(workers.map((w) => (w.child.exitCode === null ? 'alive' : w.output().slice(-4000)))).toEqual([
      'alive',
      'alive',
    ]);
    expect(job.status).toBe('completed');
    expect(job.stages[0]).toMatchObject({ total: 2000, completed: 2000, failed: 0, status: 'completed' });
    expect(job.result).toEqual({ done: 2000 });
    const {
      rows: [runs],
    } = await tm.pool.query(
      `SELECT count(DISTINCT task_key)::int AS keys,
              count(*) FILTER (WHERE finished_at IS NOT NULL)::int AS finished
       FROM ${RUNS_TABLE} WHERE job_id = $1`,
      [jobId],
    );
    expect(runs).toEqual({ keys: 2000, finished: 2000 });
    // The outages were real: some submits were refused while PostgreSQL was down...
    expect(refused).toBeGreaterThan(0);
    // ...and every submit that was accepted settles.
    for (const id of submitted) {
      const j = await until(
        async () => {
          const v = await tm.machine.getJob(id);
          return v?.status === 'completed' ? v : null;
        },
        30_000,
        `load job ${id} completed`,
      );
      expect(j.status).toBe('completed');
    }
  });
});
