/**
 * The log of a job run, parsed line by line: the plan's and the handlers' lines carry the job,
 * stage and task ids, and the engine's line about an unclassified error carries them and the
 * stack, which never reaches the ledger.
 */
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { defineJob, defineStage } from './define-job.ts';
import { createPinoLogger } from './log.ts';
import { CoreMachine } from './machine.ts';

const url = process.env['DATABASE_URL'] ?? 'postgres://postgres@127.0.0.1:5432/coremachine';
const schema = `cmlog_${randomBytes(4).toString('hex')}`;

const lines: Array<Record<string, unknown>> = [];
const destination = {
  write(s: string) {
    for (const l of s.split('\n').filter(Boolean)) lines.push(JSON.parse(l) as Record<string, unknown>);
  },
};

const work = defineStage<{ n: number }>()({
  name: 'work',
  input: z.object({ i: z.number() }),
  output: z.object({ i: z.number() }),
  plan: ({ params, log }) => {
    log.info('planning', { tasks: params.n });
    return Array.from({ length: params.n }, (_, i) => ({ key: String(i), input: { i } }));
  },
  handler: (input, ctx) => {
    ctx.log.info('working', { i: input.i });
    // Task 0 throws a plain Error on its first run (unclassified: transient, retried).
    if (input.i === 0 && ctx.attempt === 1) throw new Error('disk hiccup');
    return { i: input.i };
  },
});
const job = defineJob({
  type: 'log_probe',
  version: '1.0.0',
  description: 'logs from plan and handlers',
  parameters: z.object({ n: z.number() }),
  stages: [work],
  result: z.object({ n: z.number() }),
  aggregate: async (ctx) => ({ n: (await ctx.outputs(work)).length }),
});

describe('structured logs of a job run', () => {
  let machine: CoreMachine;
  beforeAll(async () => {
    machine = await CoreMachine.start({
      connectionString: url,
      plugins: [job],
      config: { schema, retryBaseDelayMs: 20, retryMaxDelayMs: 20 },
      log: createPinoLogger('info', { pid: process.pid }, { destination }),
    });
    await machine.startWorker();
  }, 60_000);
  afterAll(async () => {
    await machine?.close();
    const pool = new (await import('pg')).default.Pool({ connectionString: url });
    await pool.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE; DROP SCHEMA IF EXISTS "${schema}_queue" CASCADE`);
    await pool.end();
  });

  it('every line about the job carries job_id, job_type, stage, task_id and attempt', async () => {
    const { jobId } = await machine.submit('log_probe', { n: 2 });
    for (let i = 0; i < 200; i++) {
      if ((await machine.getJob(jobId))?.status === 'completed') break;
      await new Promise((r) => setTimeout(r, 50));
    }
    expect((await machine.getJob(jobId))?.status).toBe('completed');
    const tasks = (await machine.listTasks(jobId)).items;
    const idOf = (key: string) => tasks.find((t) => t.key === key)!.id;

    const planning = lines.filter((l) => l['msg'] === 'planning');
    expect(planning).toEqual([
      expect.objectContaining({ level: 'info', job_id: jobId, job_type: 'log_probe', stage: 1, tasks: 2 }),
    ]);
    const working = lines
      .filter((l) => l['msg'] === 'working')
      .map((l) => [l['job_id'], l['job_type'], l['stage'], l['task_id'], l['attempt'], l['i']]);
    expect(working).toHaveLength(3);
    expect(working).toEqual(
      expect.arrayContaining([
        [jobId, 'log_probe', 1, idOf('0'), 1, 0],
        [jobId, 'log_probe', 1, idOf('0'), 2, 0],
        [jobId, 'log_probe', 1, idOf('1'), 1, 1],
      ]),
    );
    const unclassified = lines.find((l) => l['msg'] === 'task threw an unclassified error');
    expect(unclassified).toMatchObject({ level: 'warn', job_id: jobId, task_id: idOf('0'), attempt: 1 });
    expect(String(unclassified?.['stack'])).toContain('disk hiccup');
    expect(String(unclassified?.['stack'])).toMatch(/\n\s+at /);
    // The stack stays in the log: the task's stored error has the message only.
    const events = await machine.events(jobId);
    expect(JSON.stringify(events)).not.toMatch(/\n\s+at /);
    expect(events.find((e) => e.kind === 'task_retried')?.message).toContain('disk hiccup');
    // One JSON object per line, with an ISO time and the level's name.
    for (const l of lines) {
      expect(typeof l['time']).toBe('string');
      expect(['debug', 'info', 'warn', 'error']).toContain(l['level']);
    }
  }, 30_000);
});
