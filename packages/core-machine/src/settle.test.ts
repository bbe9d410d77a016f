import { describe, expect, it } from 'vitest';
import { reconcile, type Settlement } from './settle.ts';

const base = { taskId: 't', jobId: 'j', lease: 'l' };
const error = { code: 'X', message: 'x' };

describe('reconcile: what an outcome becomes given the job status under its lock', () => {
  it('a cancelled task under a job retried meanwhile is queued again, attempt refunded', () => {
    expect(reconcile({ kind: 'cancelled', ...base }, 'processing')).toMatchObject({ kind: 'release', ...base });
  });
  it('a task completing under a cancelled job is cancelled, never completed', () => {
    expect(reconcile({ kind: 'completed', ...base, output: {} }, 'cancelled')).toEqual({ kind: 'cancelled', ...base });
  });
  it('a failed job keeps the results of tasks that finished anyway', () => {
    const done: Settlement = { kind: 'completed', ...base, output: { v: 1 } };
    expect(reconcile(done, 'failed')).toBe(done);
  });
  it('no retry or release under a job that stopped running', () => {
    for (const status of ['cancelled', 'failed', 'completed'])
      for (const e of [
        { kind: 'retry', ...base, error, delayMs: 10 },
        { kind: 'release', ...base },
      ] as Settlement[])
        expect(reconcile(e, status)).toEqual({ kind: 'cancelled', ...base });
  });
  it('a running job changes nothing else', () => {
    const entries: Settlement[] = [
      { kind: 'completed', ...base, output: 1 },
      { kind: 'failed', ...base, error },
      { kind: 'retry', ...base, error, delayMs: 5 },
    ];
    for (const e of entries) expect(reconcile(e, 'processing')).toBe(e);
  });
});
