import { createTestMachine, type TestMachine } from '@coremachine/test-kit';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ensureRunsTable, faultPlugins } from '../fixtures/fault-jobs.ts';
import { runsOf, until } from './fault-helpers.ts';

// Cancel reaches running handlers through their abort signal within 2 s — not through a
// heartbeat (the lease here is 60 s, a heartbeat every 20 s) and not through the handlers ending
// on their own (they work for 60 s). Without the abort, this test fails.
describe('cancel of running tasks', () => {
  let tm: TestMachine;
  beforeAll(async () => {
    tm = await createTestMachine({ plugins: faultPlugins, config: { leaseSeconds: 60, abortGraceSeconds: 10 } });
    await ensureRunsTable(tm.pool);
  });
  afterAll(() => tm.close());

  it('running handlers see the abort within 2 s; their tasks settle cancelled, never completed', async () => {
    const { jobId } = await tm.submit('effect_job', { n: 6, sleep_ms: 60_000, tag: `cancel-${Date.now()}` });
    await until(
      async () =>
        (
          await tm.pool.query(
            `SELECT count(*)::int AS n FROM "${tm.schema}".tasks WHERE job_id = $1 AND status = 'processing'`,
            [jobId],
          )
        ).rows[0].n === 6,
      20_000,
      'six tasks running',
    );
    const t0 = Date.now();
    expect((await tm.machine.cancel(jobId)).status).toBe('cancelled');
    await until(
      async () =>
        (await tm.tasks(jobId)).every((t) => t.status === 'cancelled') && (await tm.tasks(jobId)).length === 6,
      10_000,
      'all tasks cancelled',
    );
    const landed = Date.now() - t0;
    if (process.env['CM_PRINT_TIMINGS']) console.log(`cancel → all 6 running tasks settled cancelled: ${landed} ms`);
    expect(landed).toBeLessThan(2_000);
    const tasks = await tm.tasks(jobId);
    expect(tasks.map((t) => [t.status, t.attempts])).toEqual(Array.from({ length: 6 }, () => ['cancelled', 1]));
    const runs = await runsOf(tm.pool, jobId);
    expect(runs).toHaveLength(6);
    expect(runs.filter((r) => r.finished_at !== null)).toHaveLength(0); // no handler ran on to completion
    expect((await tm.machine.getJob(jobId))!.status).toBe('cancelled');
  });
});
