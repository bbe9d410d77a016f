import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { createPool, quoteIdent } from './db.ts';
import { defineJob, defineStage } from './define-job.ts';
import { taskId } from './job-id.ts';
import { CoreMachine } from './machine.ts';
import { recoverStalled } from './stall.ts';
import { retryJob } from './transitions.ts';

const url = process.env['DATABASE_URL'] ?? 'postgres://postgres@127.0.0.1:5432/coremachine';
const schema = `cmtr_${randomBytes(4).toString('hex')}`;
const quiet = { info() {}, warn() {}, error() {} };

const stage = defineStage<{ n: number; run: string }>();
const only = stage({
  name: 'only',
  input: z.object({ i: z.number() }),
  output: z.object({ i: z.number() }),
  plan: ({ params }) => Array.from({ length: params.n }, (_, i) => ({ key: String(i), input: { i } })),
  handler: (input) => ({ i: input.i }),
});
const oneStage = defineJob({
  type: 'one_stage',
  version: '1.0.0',
  description: 'one stage, summed',
  parameters: z.object({ n: z.number().int().min(1), run: z.string() }),
  stages: [only],
  result: z.object({ sum: z.number() }),
  aggregate: async (ctx) => ({ sum: (await ctx.outputs(only)).reduce((s, t) => s + t.output.i, 0) }),
});

describe('transitions: retry and the stall sweep close a stage through the same step as a settle', () => {
  let machine: CoreMachine;
  const q = quoteIdent(schema);
  beforeAll(async () => {
    // No worker: the test builds the ledger state, calls the transition, then reads what it did.
    machine = await CoreMachine.start({
      connectionString: url,
      plugins: [oneStage],
      config: { schema, stallSeconds: 30 },
      log: quiet,
    });
  });
  afterAll(async () => {
    await machine.close();
    const pool = createPool(url, 1);
    await pool.query(
      `DROP SCHEMA IF EXISTS ${q} CASCADE; DROP SCHEMA IF EXISTS ${quoteIdent(`${schema}_queue`)} CASCADE`,
    );
    await pool.end();
  });

  /** A job whose only stage has every task completed, the stage left `stageStatus`, the job `jobStatus`. */
  async function settledStage(run: string, jobStatus: string, stageStatus: string): Promise<string> {
    const { jobId } = await machine.submit('one_stage', { n: 2, run });
    await machine.pool.query(
      `UPDATE ${q}.jobs SET status = $2, current_stage = 1, updated_at = now() - interval '1 minute' WHERE id = $1`,
      [jobId, jobStatus],
    );
    await machine.pool.query(
      `INSERT INTO ${q}.stages (job_id, stage_index, name, status, total, completed, started_at)
       VALUES ($1, 1, 'only', $2, 2, $3, now() - interval '1 minute')`,
      [jobId, stageStatus, stageStatus === 'processing' ? 0 : 2],
    );
    for (const key of ['0', '1'])
      await machine.pool.query(
        `INSERT INTO ${q}.tasks (id, job_id, stage_index, key, input, status, output, attempts, max_attempts, lease_seconds, completed_at)
         VALUES ($1, $2, 1, $3, $4, 'completed', $4, 1, 3, 30, now() - interval '1 minute')`,
        [taskId(jobId, 1, key), jobId, key, JSON.stringify({ i: Number(key) })],
      );
    return jobId;
  }

  async function kinds(jobId: string): Promise<string[]> {
    return (await machine.events(jobId)).map((e) => e.kind);
  }

  async function aggregatesQueued(jobId: string): Promise<number> {
    const { rows } = await machine.pool.query(
      `SELECT count(*)::int AS n FROM ${quoteIdent(`${schema}_queue`)}.job
       WHERE name = 'cm.control' AND data->>'jobId' = $1 AND data->>'action' = 'aggregate'`,
      [jobId],
    );
    return rows[0].n;
  }

  it('a retry of a job cancelled after its last task completed closes the stage: stage_completed, aggregate queued', async () => {
    const jobId = await settledStage('retry', 'cancelled', 'cancelled');
    const job = await retryJob(machine, jobId);
    expect(job.status).toBe('processing');
    expect(job.stages.map((s) => [s.name, s.status, s.completed])).toEqual([['only', 'completed', 2]]);
    expect(await kinds(jobId)).toEqual(['job_submitted', 'stage_completed', 'job_retried']);
    expect(await aggregatesQueued(jobId)).toBe(1);
    // A second retry finds the job running: refused, nothing queued twice.
    await expect(machine.retry(jobId)).rejects.toMatchObject({ code: 'CM_ERR_INVALID_STATE' });
    expect(await aggregatesQueued(jobId)).toBe(1);
  });

  it('the stall sweep recounts a stage left open with every task settled and closes it the same way', async () => {
    const jobId = await settledStage('stall', 'processing', 'processing');
    const repaired = await recoverStalled(machine);
    expect(repaired.stages).toBeGreaterThanOrEqual(1);
    const job = await machine.requireJob(jobId);
    expect(job.stages.map((s) => [s.status, s.completed, s.failed])).toEqual([['completed', 2, 0]]);
    expect(await kinds(jobId)).toEqual(['job_submitted', 'stage_repaired', 'stage_completed']);
    expect(await aggregatesQueued(jobId)).toBe(1);
    // The next sweep finds nothing left to repair for this job.
    await recoverStalled(machine);
    expect(await kinds(jobId)).toEqual(['job_submitted', 'stage_repaired', 'stage_completed']);
  });

  it('the aggregate those steps queued completes the job with the stage results', async () => {
    const worker = await machine.startWorker();
    try {
      for (const run of ['retry', 'stall']) {
        const { jobId } = machine.prepare('one_stage', { n: 2, run });
        let job = await machine.requireJob(jobId);
        for (let i = 0; i < 200 && job.status === 'processing'; i++) {
          await new Promise((r) => setTimeout(r, 100));
          job = await machine.requireJob(jobId);
        }
        expect([run, job.status, job.result]).toEqual([run, 'completed', { sum: 1 }]);
      }
    } finally {
      await worker.stop();
    }
  });
});
