import { describe, expect, it } from 'vitest';
import { canonicalJson, defaultJobId, taskId } from './job-id.ts';
import { backoffMs } from './config.ts';

describe('job ids', () => {
  it('canonical JSON sorts keys at every depth and drops undefined', () => {
    expect(canonicalJson({ b: 1, a: { d: [3, { z: 1, y: 2 }], c: undefined } })).toBe(
      '{"a":{"d":[3,{"y":2,"z":1}]},"b":1}',
    );
  });

  it('the id depends on type and parameters, not on key order or excluded keys', () => {
    const a = defaultJobId('hello_world', { n: 3, message: 'hi', failure_rate: 0 }, ['failure_rate']);
    const b = defaultJobId('hello_world', { message: 'hi', failure_rate: 0.7, n: 3 }, ['failure_rate']);
    expect(a).toMatch(/^[0-9a-f]{64}$/);
    expect(a).toBe(b);
    expect(defaultJobId('other_type', { n: 3, message: 'hi' })).not.toBe(a);
    expect(defaultJobId('hello_world', { n: 4, message: 'hi' }, ['failure_rate'])).not.toBe(a);
  });

  it('task ids are stable per (job, stage, key)', () => {
    expect(taskId('j', 1, 'k')).toBe(taskId('j', 1, 'k'));
    expect(taskId('j', 1, 'k')).not.toBe(taskId('j', 2, 'k'));
    expect(taskId('j', 1, 'k')).toHaveLength(32);
  });

  it('backoff doubles per attempt and is capped', () => {
    expect([1, 2, 3, 4, 10].map((a) => backoffMs(a, 5_000, 300_000))).toEqual([5_000, 10_000, 20_000, 40_000, 300_000]);
  });
});
