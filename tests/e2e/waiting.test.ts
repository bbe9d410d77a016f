import { createTestMachine, startPostgres, type PgInstance, type TestMachine } from '@coremachine/test-kit';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ensureRunsTable, faultPlugins } from '../fixtures/fault-jobs.ts';
import { until } from './fault-helpers.ts';

// jobs.get says what a running stage waits for; health reports live workers from their
// heartbeats in the database and answers within 2 s even with PostgreSQL down.
describe('why is it waiting', () => {
  let pgi: PgInstance;
  let tm: TestMachine;
  beforeAll(async () => {
    pgi = await startPostgres();
    // This process plans and aggregates but runs no task type.
    tm = await createTestMachine({
      plugins: faultPlugins,
      connectionString: pgi.url,
      worker: { jobTypes: [] },
      config: { stallSeconds: 2 },
    });
    await ensureRunsTable(tm.pool);
  });
  afterAll(async () => {
    await tm?.close({ keepSchema: true }).catch(() => {});
    await pgi?.destroy();
  });

  it('no live worker for the type, then tasks running on a named worker', async () => {
    const { jobId } = await tm.submit('effect_job', { n: 3, sleep_ms: 60_000, tag: 'waiting' });
    const job = await until(
      async () => {
        const j = await tm.machine.getJob(jobId);
        return j?.stages[0]?.waiting ? j : null;
      },
      10_000,
      'stage planned',
    );
    expect(job.stages[0]!.waiting).toMatchObject({ noLiveWorker: true, forWorkerSlot: 0, running: [] });
    expect(job.stages[0]!.waiting!.summary).toBe(
      '3 queued, but no live worker serves effect_job: they wait until one starts',
    );
    const health = await tm.machine.health();
    expect(health.workers).toBe(1);
    expect(health.unservedTypes).toEqual(['effect_job', 'lease_job', 'timeout_job']);

    const worker = await tm.machine.startWorker({ jobTypes: ['effect_job'], control: false });
    const running = await until(
      async () => {
        const j = await tm.machine.getJob(jobId);
        return j?.stages[0]?.waiting?.running[0]?.tasks === 3 ? j : null;
      },
      10_000,
      'three running',
    );
    expect(running.stages[0]!.waiting!.running).toMatchObject([{ workerId: worker.id, workerLive: true, tasks: 3 }]);
    expect(running.stages[0]!.waiting!.summary).toBe(`3 running on ${worker.id}`);
    expect((await tm.machine.health()).unservedTypes).toEqual(['lease_job', 'timeout_job']);
    await tm.machine.cancel(jobId);
  });

  it('the timeline of a job whose type no live worker serves says so', async () => {
    const { jobId } = await tm.submit('lease_job', { n: 2, tag: 'unserved' });
    const event = await until(
      async () => (await tm.machine.events(jobId)).find((e) => e.kind === 'tasks_requeued'),
      20_000,
      'tasks_requeued event',
    );
    expect(event.message).toBe(
      '2 queued task(s) waited 2 s: no live worker serves lease_job; they run when one starts',
    );
    await tm.machine.cancel(jobId);
  });

  it('health and readiness answer within 2 s with PostgreSQL down', async () => {
    await pgi.stop('immediate');
    try {
      const t0 = Date.now();
      const [health, ready] = await Promise.all([tm.machine.health(), tm.machine.ready()]);
      expect(Date.now() - t0).toBeLessThan(2_000);
      expect(health.database.ok).toBe(false);
      expect(ready.ready).toBe(false);
    } finally {
      await pgi.start();
    }
    await until(async () => (await tm.machine.ready()).ready, 15_000, 'ready again');
  });
});
