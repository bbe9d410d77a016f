import { createTestMachine, type TestMachine } from '@coremachine/test-kit';
import helloWorld from '@coremachine/job-hello-world';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { brokenPlanJob, lenientJob, slowJob } from '../fixtures/jobs.ts';
import { REPO, startTs } from './helpers.ts';
import { join } from 'node:path';

const WORKER = join(REPO, 'tests/fixtures/worker-process.ts');

describe('a worker killed with SIGKILL mid-job', () => {
  let tm: TestMachine;
  beforeAll(async () => {
    // The API side only: all task execution happens in separate worker processes.
    tm = await createTestMachine({ plugins: [slowJob, brokenPlanJob, lenientJob, helloWorld], worker: false });
  });
  afterAll(() => tm.close());

  it('loses nothing: a new worker finishes the job, no result recorded twice, no stage advanced twice', async () => {
    const first = await startTs(WORKER, [tm.schema], /ready/, { cwd: join(REPO, 'tests') });
    const { jobId } = await tm.submit('slow_job', { n: 40, sleep_ms: 400, tag: `crash-${Date.now()}` });
    // Kill while some tasks are running (not between two batches).
    for (let i = 0; ; i++) {
      const {
        rows: [c],
      } = await tm.pool.query(
        `SELECT count(*) FILTER (WHERE status = 'completed')::int AS done, count(*) FILTER (WHERE status = 'processing')::int AS running FROM "${tm.schema}".tasks WHERE job_id = $1`,
        [jobId],
      );
      if (c.done >= 8 && c.running > 0) break;
      if (i > 600) throw new Error('the worker never got going');
      await new Promise((r) => setTimeout(r, 20));
    }
    first.child.kill('SIGKILL');
    await new Promise((r) => first.child.once('exit', r));
    const {
      rows: [mid],
    } = await tm.pool.query(
      `SELECT count(*)::int AS n FROM "${tm.schema}".tasks WHERE job_id = $1 AND status = 'processing'`,
      [jobId],
    );
    expect(mid.n).toBeGreaterThan(0); // the kill interrupted running tasks

    const second = await startTs(WORKER, [tm.schema], /ready/, { cwd: join(REPO, 'tests') });
    try {
      const job = await tm.waitFor(jobId, { timeoutMs: 60_000 }).catch(async (err: Error) => {
        const { rows } = await tm.pool.query(
          `SELECT key, status, attempts, now() - heartbeat_at AS silent_for, lease_token FROM "${tm.schema}".tasks WHERE job_id = $1 AND status <> 'completed'`,
          [jobId],
        );
        throw new Error(
          `${err.message}\nunsettled tasks: ${JSON.stringify(rows)}\nsecond worker output:\n${second.output()}`,
        );
      });
      expect(job.status).toBe('completed');
      expect(job.result).toEqual({ tasks: 40, outputs: Array.from({ length: 40 }, (_, i) => i * 2) });
      expect(job.stages.map((s) => [s.total, s.completed, s.failed])).toEqual([
        [40, 40, 0],
        [0, 0, 0],
        [1, 1, 0],
      ]);
      const tasks = await tm.tasks(jobId);
      expect(tasks.filter((t) => t.status === 'completed')).toHaveLength(41);
      const events = await tm.machine.events(jobId);
      const kinds = (k: string) => events.filter((e) => e.kind === k);
      expect(kinds('stage_started').map((e) => e.stage)).toEqual([1, 2, 3]);
      expect(kinds('stage_completed').map((e) => e.stage)).toEqual([1, 2, 3]);
      expect(kinds('job_completed')).toHaveLength(1);
      const rerun = tasks.filter((t) => t.attempts > 1);
      expect(rerun.length).toBe(mid.n);
      expect(
        kinds('task_lease_expired')
          .map((e) => e.taskId)
          .sort(),
      ).toEqual(rerun.map((t) => t.id).sort());
    } finally {
      second.child.kill('SIGTERM');
    }
  });
});
