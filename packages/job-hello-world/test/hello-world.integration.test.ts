import { createTestMachine, type TestMachine } from '@coremachine/test-kit';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import helloWorld from '../src/index.ts';

describe('hello_world', () => {
  let tm: TestMachine;
  beforeAll(async () => {
    tm = await createTestMachine({ plugins: [helloWorld] });
  });
  afterAll(() => tm.close());

  it('n=100: 200 tasks, exact counts, every reply quotes its own greeting', async () => {
    const job = await tm.submitAndWait('hello_world', { n: 100, message: 'Bonjour' });
    expect(job.status).toBe('completed');
    expect(job.stages.map((s) => [s.name, s.status, s.total, s.completed, s.failed])).toEqual([
      ['greeting', 'completed', 100, 100, 0],
      ['reply', 'completed', 100, 100, 0],
    ]);
    expect(job.result).toMatchObject({
      job_type: 'hello_world',
      n: 100,
      message: 'Bonjour',
      stages_completed: 2,
      total_tasks_executed: 200,
      summary: {
        greetings_sent: 100,
        greetings_succeeded: 100,
        greetings_failed: 0,
        replies_sent: 100,
        replies_succeeded: 100,
        replies_failed: 0,
        retries: 0,
      },
    });
    const replies = await tm.tasks(job.id, { stage: 2 });
    expect(replies).toHaveLength(100);
    for (const r of replies) {
      const index = Number(r.key);
      expect(r.output).toMatchObject({
        reply: `Replying to: Bonjour from task ${index}!`,
        task_index: index,
        predecessor_accessed: true,
      });
    }
  });
});
