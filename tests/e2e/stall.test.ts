import helloWorld from '@coremachine/job-hello-world';
import { createTestMachine, type TestMachine } from '@coremachine/test-kit';
import { afterEach, describe, expect, it } from 'vitest';

// Lost queue messages (purged queue, exhausted deliveries, an operator's DELETE) must not leave
// a job hanging: the stall sweep sends new ones.
describe('no job can hang when its queue messages are lost', () => {
  let tm: TestMachine | null = null;
  afterEach(async () => {
    await tm?.close();
    tm = null;
  });

  it('a submitted job whose plan message was lost is planned and completes', async () => {
    tm = await createTestMachine({ plugins: [helloWorld], worker: false, config: { stallSeconds: 1 } });
    const { jobId } = await tm.submit('hello_world', { n: 5, message: 'lost plan' });
    const purged = await tm.pool.query(`DELETE FROM "${tm.schema}_queue".job`);
    expect(purged.rowCount).toBeGreaterThan(0);
    await tm.pool.query(
      `UPDATE "${tm.schema}".jobs SET updated_at = now() - interval '1 hour', created_at = now() - interval '1 hour' WHERE id = $1`,
      [jobId],
    );
    await tm.machine.startWorker();
    const job = await tm.waitFor(jobId, { timeoutMs: 30_000 });
    expect(job.status).toBe('completed');
    const events = await tm.machine.events(jobId);
    expect(events.filter((e) => e.kind === 'control_resent')).toHaveLength(1);
  });

  it('queued tasks whose messages were lost are sent again and the job completes', async () => {
    tm = await createTestMachine({ plugins: [helloWorld], worker: { jobTypes: [] }, config: { stallSeconds: 1 } });
    const { jobId } = await tm.submit('hello_world', { n: 8, message: 'lost tasks' });
    await tm.waitFor(jobId, { until: (j) => j.stages[0]!.total === 8 });
    // hello_world groups up to 25 task ids per message: one message carries all eight.
    const purged = await tm.pool.query(
      `DELETE FROM "${tm.schema}_queue".job WHERE name = 'cm.task.hello_world' RETURNING data`,
    );
    expect(purged.rows.flatMap((r) => r.data.taskIds)).toHaveLength(8);
    await tm.pool.query(`UPDATE "${tm.schema}".tasks SET due_at = now() - interval '1 hour' WHERE job_id = $1`, [
      jobId,
    ]);
    await tm.machine.startWorker({ control: false });
    const job = await tm.waitFor(jobId, { timeoutMs: 30_000 });
    expect(job.status).toBe('completed');
    expect(job.stages.map((s) => s.completed)).toEqual([8, 8]);
    const events = await tm.machine.events(jobId);
    expect(events.find((e) => e.kind === 'tasks_requeued')?.message).toContain('8 queued task(s)');
  });

  it('messages held by a worker that died before claiming its tasks are delivered again', async () => {
    tm = await createTestMachine({ plugins: [helloWorld], worker: { jobTypes: [] } });
    const { jobId } = await tm.submit('hello_world', { n: 4, message: 'held' });
    await tm.waitFor(jobId, { until: (j) => j.stages[0]!.total === 4 });
    // A raw fetch takes the messages like a worker would, then never claims nor heartbeats:
    // exactly what a worker killed between fetch and claim leaves behind.
    const held = await tm.machine.boss.fetch<{ taskIds: string[] }>('cm.task.hello_world', { batchSize: 10 });
    expect(held.flatMap((m) => m.data.taskIds)).toHaveLength(4);
    await tm.machine.startWorker({ control: false });
    const job = await tm.waitFor(jobId, { timeoutMs: 45_000 });
    expect(job.status).toBe('completed');
    const greetings = await tm.tasks(jobId, { stage: 1 });
    expect(greetings.map((t) => t.attempts)).toEqual([1, 1, 1, 1]);
  });
});
