import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { defineJob, defineStage } from './define-job.ts';
import { CoreMachine } from './machine.ts';

const url = process.env['DATABASE_URL'] ?? 'postgres://postgres@127.0.0.1:5432/coremachine';
const schema = `cmctr_${randomBytes(4).toString('hex')}`;
const quiet = { info() {}, warn() {}, error() {} };

type Params = { n: number };
const stage = defineStage<Params>();
const greeting = stage({
  name: 'greeting',
  input: z.object({ i: z.number() }),
  output: z.object({ text: z.string(), index: z.number() }),
  plan: ({ params }) => Array.from({ length: params.n }, (_, i) => ({ key: String(i), input: { i } })),
  handler: (input) => ({ text: `hello ${input.i}`, index: input.i }),
});
const reply = stage({
  name: 'reply',
  input: z.object({ index: z.number() }),
  output: z.object({ text: z.string(), ledgerSchema: z.string() }),
  // Planned from the greetings' typed outputs; each reply reads its greeting by lineage.
  plan: async (ctx) => (await ctx.outputs(greeting)).map((g) => ({ key: g.key, input: { index: g.output.index } })),
  handler: async (input, ctx) => {
    const before = await ctx.predecessor(greeting);
    return { text: `${before?.text ?? 'nothing'} back (${input.index})`, ledgerSchema: ctx.ledger.schema };
  },
});
const typedJob = defineJob({
  type: 'typed_job',
  version: '1.0.0',
  description: 'outputs by stage object',
  parameters: z.object({ n: z.number().int().min(1) }),
  stages: [greeting, reply],
  result: z.object({ replies: z.array(z.string()), greetings: z.number(), schema: z.string() }),
  aggregate: async (ctx) => ({
    replies: (await ctx.outputs(reply)).map((r) => r.output.text),
    greetings: (await ctx.outputs(greeting)).length,
    schema: ctx.ledger.schema,
  }),
});

describe('the typed contract at run time', () => {
  let machine: CoreMachine;
  beforeAll(async () => {
    machine = await CoreMachine.start({
      connectionString: url,
      plugins: [typedJob],
      config: { schema, pollingIntervalSeconds: 0.5 },
      log: quiet,
    });
    await machine.startWorker();
  });
  afterAll(async () => {
    await machine.close();
    const pool = (await import('./db.ts')).createPool(url, 1);
    await pool.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE; DROP SCHEMA IF EXISTS "${schema}_queue" CASCADE`);
    await pool.end();
  });

  it('plan, predecessor and aggregate read outputs by stage object', async () => {
    const { jobId } = await machine.submit('typed_job', { n: 3 });
    let job = await machine.getJob(jobId);
    for (let i = 0; i < 300 && job?.status !== 'completed' && job?.status !== 'failed'; i++) {
      await new Promise((r) => setTimeout(r, 100));
      job = await machine.getJob(jobId);
    }
    expect(job?.status).toBe('completed');
    expect(job?.result).toEqual({
      replies: ['hello 0 back (0)', 'hello 1 back (1)', 'hello 2 back (2)'],
      greetings: 3,
      schema,
    });
  });

  it('a plugin that declares a service nobody supplies stops the start, naming both', async () => {
    const needy = { ...typedJob, type: 'needy_job', services: ['storage'] } as never;
    await expect(
      CoreMachine.start({ connectionString: url, plugins: [needy], config: { schema }, log: quiet }),
    ).rejects.toMatchObject({
      code: 'CM_ERR_SERVICE_MISSING',
      message: expect.stringContaining("needy_job needs service 'storage'"),
    });
  });
});
