import { createTestMachine, startPostgres, type PgInstance, type TestMachine } from '@coremachine/test-kit';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { controlPlugins, EFFECTS_TABLE, ensureEffectsTable } from '../fixtures/control-jobs.ts';
import { startFaultWorker, until, type WorkerProcess } from './fault-helpers.ts';

// Control steps (plan, aggregate) under faults: the process running one is SIGKILLed, the same
// control message arrives several times, two worker processes settle one large stage at once.
// Each scenario has its own PostgreSQL and real worker processes; this process is the API.

const config = { leaseSeconds: 5, stallSeconds: 5 };

interface Effect {
  step: string;
  key: string;
  pid: number;
  finished: boolean;
}

async function effectsOf(tm: TestMachine, jobId: string, step: string): Promise<Effect[]> {
  const { rows } = await tm.pool.query<Effect>(
    `SELECT step, key, pid, finished_at IS NOT NULL AS finished FROM ${EFFECTS_TABLE} WHERE job_id = $1 AND step = $2 ORDER BY id`,
    [jobId, step],
  );
  return rows;
}

/** Every stage started and completed once, the job completed once, every task ran and settled once. */
async function expectAdvancedOnce(tm: TestMachine, jobId: string, n: number): Promise<void> {
  const kinds = (await tm.machine.events(jobId)).map((e) => e.kind);
  const count = (k: string) => kinds.filter((x) => x === k).length;
  expect([count('stage_started'), count('stage_completed'), count('job_completed'), count('job_failed')]).toEqual([
    1, 1, 1, 0,
  ]);
  const {
    rows: [t],
  } = await tm.pool.query(
    `SELECT count(*)::int AS tasks, count(*) FILTER (WHERE status = 'completed')::int AS completed,
            COALESCE(sum(attempts), 0)::int AS attempts, count(DISTINCT key)::int AS keys
     FROM "${tm.schema}".tasks WHERE job_id = $1`,
    [jobId],
  );
  expect(t).toEqual({ tasks: n, completed: n, attempts: n, keys: n });
  const {
    rows: [runs],
  } = await tm.pool.query(
    `SELECT count(*)::int AS runs, count(DISTINCT key)::int AS keys, count(*) FILTER (WHERE finished_at IS NOT NULL)::int AS finished
     FROM ${EFFECTS_TABLE} WHERE job_id = $1 AND step = 'task'`,
    [jobId],
  );
  expect(runs).toEqual({ runs: n, keys: n, finished: n });
}

async function setup(workerCount: number) {
  const pgi = await startPostgres();
  const tm = await createTestMachine({
    plugins: controlPlugins,
    worker: false,
    connectionString: pgi.url,
    config,
  });
  await ensureEffectsTable(tm.pool);
  const workers = await Promise.all(
    Array.from({ length: workerCount }, () => startFaultWorker(pgi.url, tm.schema, config)),
  );
  return { pgi, tm, workers };
}

async function teardown(pgi: PgInstance | undefined, tm: TestMachine | undefined, workers: WorkerProcess[]) {
  for (const w of workers) w.child.kill('SIGKILL');
  await tm?.close({ keepSchema: true }).catch(() => {});
  await pgi?.destroy();
}

const alive = (workers: WorkerProcess[]) =>
  workers.map((w) => (w.child.exitCode === null && w.child.signalCode === null ? 'alive' : w.output().slice(-4000)));

describe('SIGKILL of the worker running a control step', () => {
  let pgi: PgInstance;
  let tm: TestMachine;
  const workers: WorkerProcess[] = [];

  beforeAll(async () => {
    ({ pgi, tm } = await setup(0));
  });
  afterAll(() => teardown(pgi, tm, workers));

  /** Two live workers; the one running `step` first is killed in the middle of it. */
  async function killDuring(step: 'plan' | 'aggregate', params: object) {
    // The previous scenario's survivor leaves: two fresh workers, one of which will be killed.
    for (const w of workers.splice(0)) {
      w.child.kill('SIGKILL');
      await w.exited;
    }
    workers.push(...(await Promise.all([0, 1].map(() => startFaultWorker(pgi.url, tm.schema, config)))));
    const { jobId } = await tm.submit('control_job', params);
    const [first] = await until(
      async () => {
        const e = await effectsOf(tm, jobId, step);
        return e.length > 0 ? e : null;
      },
      30_000,
      `${step} started`,
    );
    const victim = workers.find((w) => w.child.pid === first!.pid && w.child.exitCode === null);
    expect(victim, `the ${step} runs in one of the live workers`).toBeDefined();
    const t0 = Date.now();
    victim!.child.kill('SIGKILL');
    await victim!.exited;
    const job = await tm.waitFor(jobId, { timeoutMs: 45_000 });
    const survivor = workers.find((w) => w !== victim && w.child.exitCode === null && w.child.signalCode === null);
    return { jobId, job, victim: victim!, survivor: survivor!, recoveredMs: Date.now() - t0 };
  }

  it('during plan: a second worker plans the stage once, every task settles once, the job completes', async () => {
    const { jobId, job, victim, survivor, recoveredMs } = await killDuring('plan', {
      n: 200,
      plan_first_ms: 120_000,
      tag: 'kill-plan',
    });
    if (process.env['CM_PRINT_TIMINGS'])
      console.log(`SIGKILL during plan: job completed ${recoveredMs} ms after the kill`);
    expect(job.status).toBe('completed');
    expect(job.result).toEqual({ done: 200, sum: (199 * 200) / 2 });
    expect(job.stages[0]).toMatchObject({ total: 200, completed: 200, failed: 0, status: 'completed' });
    // The killed plan never finished; the second ran in the surviving worker and is the only one.
    const plans = await effectsOf(tm, jobId, 'plan');
    expect(plans.map((p) => [p.pid, p.finished])).toEqual([
      [victim.child.pid, false],
      [survivor.child.pid, true],
    ]);
    expect((await effectsOf(tm, jobId, 'aggregate')).map((a) => a.finished)).toEqual([true]);
    await expectAdvancedOnce(tm, jobId, 200);
  });

  it('during aggregate: a second worker aggregates, the job completes once with its result', async () => {
    const { jobId, job, victim, survivor, recoveredMs } = await killDuring('aggregate', {
      n: 200,
      aggregate_first_ms: 120_000,
      tag: 'kill-aggregate',
    });
    if (process.env['CM_PRINT_TIMINGS'])
      console.log(`SIGKILL during aggregate: job completed ${recoveredMs} ms after the kill`);
    expect(job.status).toBe('completed');
    expect(job.result).toEqual({ done: 200, sum: (199 * 200) / 2 });
    expect(job.stages[0]).toMatchObject({ total: 200, completed: 200, failed: 0, status: 'completed' });
    expect((await effectsOf(tm, jobId, 'plan')).map((p) => p.finished)).toEqual([true]);
    const aggregates = await effectsOf(tm, jobId, 'aggregate');
    expect(aggregates.map((a) => [a.pid, a.finished])).toEqual([
      [victim.child.pid, false],
      [survivor.child.pid, true],
    ]);
    await expectAdvancedOnce(tm, jobId, 200);
    expect(alive([survivor])).toEqual(['alive']);
  });
});

describe('duplicate control messages', () => {
  let pgi: PgInstance;
  let tm: TestMachine;
  let workers: WorkerProcess[] = [];

  beforeAll(async () => {
    ({ pgi, tm, workers } = await setup(2));
  });
  afterAll(() => teardown(pgi, tm, workers));

  const send = (jobId: string, action: 'plan' | 'aggregate', copies: number) =>
    Promise.all(
      Array.from({ length: copies }, () =>
        tm.machine.boss.send('cm.control', action === 'plan' ? { jobId, action, stage: 1 } : { jobId, action }),
      ),
    );

  it('the same plan and aggregate sent three times, during and after the step: planned once, aggregated once', async () => {
    // Every plan and aggregate run takes 1.5 s, so the copies arrive while the first is running
    // (two workers, each running two control batches at once).
    const { jobId } = await tm.submit('control_job', { n: 300, plan_ms: 1_500, aggregate_ms: 1_500, tag: 'dup' });
    await send(jobId, 'plan', 2);
    await until(async () => (await effectsOf(tm, jobId, 'aggregate')).length > 0, 30_000, 'aggregate started');
    await send(jobId, 'aggregate', 2);
    const job = await tm.waitFor(jobId, { timeoutMs: 30_000 });
    expect(job.status).toBe('completed');
    // After the job completed: copies of both steps again.
    await send(jobId, 'plan', 2);
    await send(jobId, 'aggregate', 2);
    await until(
      async () =>
        (
          await tm.pool.query(
            `SELECT count(*)::int AS n FROM "${tm.schema}_queue".job WHERE name = 'cm.control' AND data->>'jobId' = $1 AND state <> 'completed'`,
            [jobId],
          )
        ).rows[0].n === 0,
      30_000,
      'every control message handled',
    );
    const after = await tm.machine.getJob(jobId);
    expect(after).toMatchObject({
      status: 'completed',
      completedAt: job.completedAt,
      result: { done: 300, sum: 44_850 },
    });
    expect(job.stages[0]).toMatchObject({ total: 300, completed: 300, failed: 0, status: 'completed' });
    // Five messages of each step (the engine's own, two copies during it, two after), one run of each.
    const { rows: msgs } = await tm.pool.query(
      `SELECT data->>'action' AS action, count(*)::int AS n FROM "${tm.schema}_queue".job WHERE name = 'cm.control' AND data->>'jobId' = $1 GROUP BY 1 ORDER BY 1`,
      [jobId],
    );
    expect(msgs).toEqual([
      { action: 'aggregate', n: 5 },
      { action: 'plan', n: 5 },
    ]);
    expect((await effectsOf(tm, jobId, 'plan')).map((p) => p.finished)).toEqual([true]);
    expect((await effectsOf(tm, jobId, 'aggregate')).map((a) => a.finished)).toEqual([true]);
    await expectAdvancedOnce(tm, jobId, 300);
    expect(alive(workers)).toEqual(['alive', 'alive']);
  });
});

describe('two worker processes settling one large stage', () => {
  let pgi: PgInstance;
  let tm: TestMachine;
  let workers: WorkerProcess[] = [];
  const N = 10_000;

  beforeAll(async () => {
    ({ pgi, tm, workers } = await setup(2));
  });
  afterAll(() => teardown(pgi, tm, workers));

  it(`${N.toLocaleString('en')} no-op tasks: every task settles once, the stage counts them all, the job completes once`, async () => {
    const t0 = Date.now();
    const { jobId } = await tm.submit('control_job', { n: N, tag: 'large' });
    const job = await tm.waitFor(jobId, { timeoutMs: 60_000 });
    const elapsed = Date.now() - t0;
    if (process.env['CM_PRINT_TIMINGS']) console.log(`${N} tasks, two workers: ${elapsed} ms submit to completed`);
    expect(job.status).toBe('completed');
    expect(job.result).toEqual({ done: N, sum: ((N - 1) * N) / 2 });
    expect(job.stages[0]).toMatchObject({ total: N, completed: N, failed: 0, status: 'completed' });
    await expectAdvancedOnce(tm, jobId, N);
    // Both processes settled a real share, at the same time.
    const { rows } = await tm.pool.query(
      `SELECT pid, count(*)::int AS n, min(started_at) AS first, max(finished_at) AS last
       FROM ${EFFECTS_TABLE} WHERE job_id = $1 AND step = 'task' GROUP BY pid ORDER BY pid`,
      [jobId],
    );
    expect(rows.map((r) => r.pid).sort()).toEqual(workers.map((w) => w.child.pid).sort());
    for (const r of rows) expect(r.n).toBeGreaterThan(N / 10);
    const [a, b] = rows as Array<{ first: Date; last: Date }>;
    expect(a!.first.getTime()).toBeLessThan(b!.last.getTime());
    expect(b!.first.getTime()).toBeLessThan(a!.last.getTime());
    expect(alive(workers)).toEqual(['alive', 'alive']);
  });
});
