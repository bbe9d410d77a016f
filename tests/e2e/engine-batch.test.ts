import { defineJob, defineStage } from '@coremachine/core-machine';
import { createTestMachine, type TestMachine } from '@coremachine/test-kit';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';

// Control steps and submits go in batches (a fetch of control messages, the submits that arrive
// together): a few statements per batch, not per job. Counted here, with what batching must not
// change: a plan that throws fails only its own job, every stage starts and completes once, the
// same job submitted twice in one group is one job.
const small = defineJob({
  type: 'batch_small',
  version: '1.0.0',
  description: 'n no-op tasks; the plan throws when asked to',
  parameters: z.object({ n: z.number().int(), run: z.string(), bad: z.boolean().default(false) }),
  stages: [
    defineStage<{ n: number; bad: boolean }>()({
      name: 'noop',
      input: z.object({ i: z.number().int() }),
      output: z.object({ i: z.number().int() }),
      plan: ({ params }) => {
        if (params.bad) throw new Error('this plan fails on purpose');
        return Array.from({ length: params.n }, (_, i) => ({ key: String(i), input: { i } }));
      },
      handler: ({ i }) => ({ i }),
    }),
  ],
  result: z.object({ sum: z.number() }),
  aggregate: async (ctx) => ({ sum: (await ctx.tasks('noop')).reduce((s, t) => s + (t.output as { i: number }).i, 0) }),
  queue: { batchSize: 100, concurrency: 2, tasksPerMessage: 10 },
});

/** Counts the statements every pg client of this process sends while `fn` runs. */
async function countStatements<T>(fn: () => Promise<T>): Promise<{ value: T; statements: number }> {
  const original = pg.Client.prototype.query;
  let statements = 0;
  pg.Client.prototype.query = function (this: pg.Client, ...args: unknown[]) {
    statements++;
    return (original as (...a: unknown[]) => unknown).apply(this, args);
  } as typeof original;
  try {
    const value = await fn();
    return { value, statements };
  } finally {
    pg.Client.prototype.query = original;
  }
}

describe('control steps and submits in batches', () => {
  let tm: TestMachine;
  beforeAll(async () => {
    tm = await createTestMachine({ plugins: [small] });
  });
  afterAll(async () => {
    await tm?.close();
  });

  const settleAll = async (ids: string[]) => {
    for (;;) {
      const { rows } = await tm.pool.query(
        `SELECT count(*)::int AS n FROM "${tm.schema}".jobs WHERE id = ANY($1) AND status IN ('completed', 'failed')`,
        [ids],
      );
      if (rows[0].n === ids.length) return;
      await new Promise((r) => setTimeout(r, 50));
    }
  };

  it('200 jobs of 10 tasks submitted at once: a few statements per job (30 one by one), each job done once', async () => {
    const jobs = 200;
    const { value: ids, statements } = await countStatements(async () => {
      const submitted = await Promise.all(
        Array.from({ length: jobs }, (_, i) => tm.submit('batch_small', { n: 10, run: `many-${i}` })),
      );
      const jobIds = submitted.map((s) => s.jobId);
      await settleAll(jobIds);
      return jobIds;
    });
    // Polling included (the worker's idle fetches, this test's own polls).
    expect(statements / jobs).toBeLessThan(6);
    const { rows } = await tm.pool.query(
      `SELECT status, result, count(*)::int AS n FROM "${tm.schema}".jobs WHERE id = ANY($1) GROUP BY status, result`,
      [ids],
    );
    expect(rows).toEqual([{ status: 'completed', result: { sum: 45 }, n: jobs }]);
    const { rows: kinds } = await tm.pool.query(
      `SELECT kind, count(*)::int AS n FROM "${tm.schema}".job_events WHERE job_id = ANY($1) GROUP BY kind ORDER BY kind`,
      [ids],
    );
    expect(kinds).toEqual(
      ['job_completed', 'job_submitted', 'stage_completed', 'stage_started'].map((kind) => ({ kind, n: jobs })),
    );
  });

  it('a plan that throws fails only its own job; the same job twice in one group is one job', async () => {
    const params = Array.from({ length: 40 }, (_, i) => ({ n: 3, run: `mixed-${i}`, bad: i % 4 === 0 }));
    const [twice, again, ...rest] = await Promise.all([
      tm.submit('batch_small', { n: 2, run: 'twice' }),
      tm.submit('batch_small', { n: 2, run: 'twice' }),
      ...params.map((p) => tm.submit('batch_small', p)),
    ]);
    expect([twice!.jobId === again!.jobId, twice!.idempotent, again!.idempotent]).toEqual([true, false, true]);
    await settleAll([twice!.jobId, ...rest.map((r) => r.jobId)]);
    for (const [i, r] of rest.entries()) {
      const job = (await tm.machine.getJob(r.jobId))!;
      if (params[i]!.bad) {
        expect([job.status, job.error?.code, job.error?.message]).toEqual([
          'failed',
          'PLAN_FAILED',
          'this plan fails on purpose',
        ]);
      } else expect([job.status, job.result]).toEqual(['completed', { sum: 3 }]);
    }
    const { rows } = await tm.pool.query(
      `SELECT count(*)::int AS n FROM "${tm.schema}".jobs WHERE parameters->>'run' = 'twice'`,
    );
    expect(rows[0].n).toBe(1);
    expect((await tm.machine.getJob(twice!.jobId))!.status).toBe('completed');
  });
});
