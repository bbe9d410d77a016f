/**
 * The soak's job: a greeting stage and a reply stage reading its greeting by lineage (the shape
 * of hello_world), with failure injection; every handler run that reaches its end is recorded
 * in `public.cm_soak_effects`, so double work shows.
 */
import { defineJob, defineStage, TaskError } from '@coremachine/core-machine';
import type pg from 'pg';
import { z } from 'zod';

export const EFFECTS = 'public.cm_soak_effects';

export async function ensureEffects(pool: pg.Pool): Promise<void> {
  await pool.query(
    `CREATE TABLE IF NOT EXISTS ${EFFECTS} (job_id text NOT NULL, stage int NOT NULL, task_key text NOT NULL, pid int NOT NULL, at timestamptz NOT NULL DEFAULT clock_timestamp())`,
  );
}

type Params = { n: number; failure_rate: number; sleep_ms: number; run: string };
const stage = defineStage<Params>();

function pause(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    const t = setTimeout(resolve, ms);
    signal.addEventListener(
      'abort',
      () => {
        clearTimeout(t);
        reject(signal.reason as Error);
      },
      { once: true },
    );
  });
}

const greeting = stage({
  name: 'greeting',
  input: z.object({ i: z.number().int() }),
  output: z.object({ text: z.string() }),
  plan: ({ params }) => Array.from({ length: params.n }, (_, i) => ({ key: String(i).padStart(4, '0'), input: { i } })),
  handler: async (input, ctx) => {
    await pause(Math.random() * ctx.params.sleep_ms, ctx.signal);
    if (Math.random() < ctx.params.failure_rate)
      throw new TaskError('INJECTED_FAILURE', `greeting ${input.i} failed on purpose (attempt ${ctx.attempt})`);
    await ctx.db.query(`INSERT INTO ${EFFECTS} (job_id, stage, task_key, pid) VALUES ($1, 1, $2, $3)`, [
      ctx.jobId,
      ctx.key,
      process.pid,
    ]);
    return { text: `hello ${input.i}` };
  },
});

const reply = stage({
  name: 'reply',
  input: z.object({ i: z.number().int() }),
  output: z.object({ text: z.string() }),
  plan: async (ctx) => (await ctx.outputs(greeting)).map((g, i) => ({ key: g.key, input: { i } })),
  handler: async (input, ctx) => {
    const before = await ctx.predecessor(greeting);
    if (!before) throw new TaskError('PREDECESSOR_MISSING', `no greeting for ${ctx.key}`, { permanent: true });
    await pause(Math.random() * ctx.params.sleep_ms, ctx.signal);
    await ctx.db.query(`INSERT INTO ${EFFECTS} (job_id, stage, task_key, pid) VALUES ($1, 2, $2, $3)`, [
      ctx.jobId,
      ctx.key,
      process.pid,
    ]);
    return { text: `${before.text} back (${input.i})` };
  },
});

export const soakJob = defineJob({
  type: 'soak_hello',
  version: '1.0.0',
  description: 'greetings and replies with failure injection',
  parameters: z.object({
    n: z.number().int().min(1).max(100),
    failure_rate: z.number().min(0).max(0.9).default(0),
    sleep_ms: z.number().int().min(0).default(50),
    run: z.string(),
  }),
  stages: [greeting, reply],
  result: z.object({ replies: z.number().int() }),
  aggregate: async (ctx) => ({ replies: (await ctx.outputs(reply)).length }),
  queue: { batchSize: 20, concurrency: 2, tasksPerMessage: 5 },
});
