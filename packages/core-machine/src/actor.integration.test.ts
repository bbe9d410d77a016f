/**
 * Actor events: written by the ledger right after the engine's event of the actor's action, in
 * the same transaction (a rollback drops both), and only for that action and only on behalf of
 * an actor.
 */
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { withActor } from './actor.ts';
import { withTransaction } from './db.ts';
import { defineJob, defineStage } from './define-job.ts';
import { addEvent } from './ledger.ts';
import { CoreMachine } from './machine.ts';

const url = process.env['DATABASE_URL'] ?? 'postgres://postgres@127.0.0.1:5432/coremachine';
const schema = `cmact_${randomBytes(4).toString('hex')}`;
const quiet = { info() {}, warn() {}, error() {} };
const one = defineStage<{ n: number }>()({
  name: 'one',
  input: z.object({}),
  output: z.object({}),
  plan: () => [],
  handler: () => ({}),
});
const job = defineJob({
  type: 'actor_probe',
  version: '1.0.0',
  description: 'nothing',
  parameters: z.object({ n: z.number() }),
  stages: [one],
  result: z.object({}),
  aggregate: () => ({}),
});
const ci = { token: 'ci', role: 'submit', procedure: 'jobs.submit' };

describe('actor events', () => {
  let machine: CoreMachine;
  beforeAll(async () => {
    machine = await CoreMachine.start({ connectionString: url, plugins: [job], config: { schema }, log: quiet });
  }, 60_000);
  afterAll(async () => {
    await machine?.pool.query(
      `DROP SCHEMA IF EXISTS "${schema}" CASCADE; DROP SCHEMA IF EXISTS "${schema}_queue" CASCADE`,
    );
    await machine?.close();
  });
  const kinds = async (jobId: string) => (await machine.events(jobId)).map((e) => [e.kind, e.data]);

  it('follows the engine event of the action, in its transaction', async () => {
    const { jobId } = await withActor(ci, () => machine.submit('actor_probe', { n: 1 }));
    expect(await kinds(jobId)).toEqual([
      ['job_submitted', { type: 'actor_probe' }],
      ['actor', { action: 'submit', procedure: 'jobs.submit', token: 'ci', role: 'submit' }],
    ]);
    // Rolled back with the event it follows.
    await expect(
      withActor({ ...ci, procedure: 'jobs.cancel' }, () =>
        withTransaction(machine.pool, async (c) => {
          await addEvent(c, machine.t, jobId, 'job_cancelled');
          throw new Error('rolled back');
        }),
      ),
    ).rejects.toThrow('rolled back');
    expect(await kinds(jobId)).toHaveLength(2);
  });

  it('is not written without an actor, nor for another action', async () => {
    const { jobId } = await machine.submit('actor_probe', { n: 2 });
    await withActor(ci, () => addEvent(machine.pool, machine.t, jobId, 'job_cancelled'));
    expect((await kinds(jobId)).map((k) => k[0])).toEqual(['job_submitted', 'job_cancelled']);
  });
});
