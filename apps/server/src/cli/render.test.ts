import type { JobView } from '@coremachine/core-machine';
import { describe, expect, it } from 'vitest';
import { jobSummary } from './render.ts';

const stage = (index: number, name: string, status: 'processing' | 'pending') => ({
  index,
  name,
  status,
  total: status === 'pending' ? 0 : 2,
  completed: 0,
  failed: 0,
  startedAt: null,
  completedAt: null,
});

describe('jobSummary', () => {
  it('says under the running stage what its tasks wait for, with the next retry time', () => {
    const job: JobView = {
      id: 'a'.repeat(64),
      type: 'hello_world',
      pluginVersion: '1.0.0',
      status: 'processing',
      parameters: {},
      currentStage: 1,
      totalStages: 2,
      stages: [
        {
          ...stage(1, 'greeting', 'processing'),
          waiting: {
            retryScheduled: 2,
            nextRetryAt: '2026-01-01T10:00:00.000Z',
            forWorkerSlot: 0,
            noLiveWorker: false,
            running: [],
            summary: '2 retrying, the next at 2026-01-01T10:00:00.000Z',
          },
        },
        stage(2, 'reply', 'pending'),
      ],
      result: null,
      error: null,
      createdAt: '2026-01-01T09:00:00.000Z',
      updatedAt: '2026-01-01T09:00:00.000Z',
      startedAt: null,
      completedAt: null,
    };
    const lines = jobSummary(job).split('\n');
    expect(lines).toHaveLength(4);
    expect(lines[1]).toMatch(/^ {2}greeting\s+\[░+\]\s+0\/2 processing/);
    expect(lines[2]).toBe('    waiting: 2 retrying, the next at 2026-01-01T10:00:00.000Z');
    expect(lines[3]).toMatch(/^ {2}reply\s+\[░+\]\s+0\/0 pending/);
  });
});
