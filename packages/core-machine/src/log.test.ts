import { Writable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { createPinoLogger, normalizeFields, withFields } from './log.ts';

function capture() {
  const lines: Array<Record<string, unknown>> = [];
  const destination = new Writable({
    write(chunk: Buffer, _enc, done) {
      for (const l of chunk.toString('utf8').split('\n').filter(Boolean)) lines.push(JSON.parse(l));
      done();
    },
  });
  return { lines, destination: destination as unknown as { write(s: string): void } };
}

describe('pino logs', () => {
  it('writes one JSON object per line with level names, ISO time and the ids renamed', () => {
    const { lines, destination } = capture();
    const log = createPinoLogger('info', { pid: 7 }, { destination });
    log.debug('not written at info');
    log.warn('task failed', { jobId: 'j1', taskId: 't1', attempts: 2, code: 'X' });
    log.child({ jobType: 'hello_world' }).info('planned', { stage_index: 1 });
    expect(lines).toHaveLength(2);
    expect(lines[0]).toMatchObject({
      level: 'warn',
      msg: 'task failed',
      job_id: 'j1',
      task_id: 't1',
      attempt: 2,
      pid: 7,
    });
    expect(Number.isNaN(Date.parse(String(lines[0]!['time'])))).toBe(false);
    expect(lines[1]).toMatchObject({ level: 'info', msg: 'planned', job_type: 'hello_world', stage: 1 });
    expect(lines[1]!['hostname']).toBeTruthy();
  });

  it('keeps the level: silent writes nothing, debug writes debug', () => {
    const a = capture();
    createPinoLogger('silent', {}, { destination: a.destination }).error('x');
    expect(a.lines).toHaveLength(0);
    const b = capture();
    createPinoLogger('debug', {}, { destination: b.destination }).debug('y');
    expect(b.lines[0]).toMatchObject({ level: 'debug', msg: 'y' });
  });

  it('withFields merges fields into a plain Logger too', () => {
    const seen: Array<Record<string, unknown> | undefined> = [];
    const plain = { info: (_m: string, f?: Record<string, unknown>) => seen.push(f), warn: () => {}, error: () => {} };
    withFields(plain, { job_id: 'j' }).info('m', { n: 1 });
    expect(seen[0]).toEqual({ job_id: 'j', n: 1 });
    expect(normalizeFields({ jobId: 'a', other: 1 })).toEqual({ job_id: 'a', other: 1 });
  });
});
