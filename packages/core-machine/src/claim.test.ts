import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { capsOf, unknownLimitKeys } from './claim.ts';
import { parseConcurrencyLimits } from './config.ts';
import { defineJob, defineStage } from './define-job.ts';

const stage = (name: string) =>
  defineStage<{ n: number }>()({
    name,
    input: z.object({}),
    output: z.object({}),
    plan: () => [],
    handler: () => ({}),
  });
const job = defineJob({
  type: 'two_stages',
  version: '1.0.0',
  description: 'two stages',
  parameters: z.object({ n: z.number() }),
  stages: [stage('first'), stage('second')],
  result: z.object({}),
  aggregate: () => ({}),
});

describe('concurrency limits', () => {
  it('CM_CONCURRENCY_LIMITS parses per type and per type and stage; bad entries name themselves', () => {
    expect(parseConcurrencyLimits('process_raster=4, ingest_vector.load=2')).toEqual({
      process_raster: 4,
      'ingest_vector.load': 2,
    });
    expect(parseConcurrencyLimits('')).toEqual({});
    expect(() => parseConcurrencyLimits('process_raster=0')).toThrow(/"process_raster=0"/);
    expect(() => parseConcurrencyLimits('process_raster:4')).toThrow(/<job type>\[\.<stage>\]=<positive integer>/);
  });

  it('the caps of a type: its own and per stage index; none when nothing names it', () => {
    expect(capsOf(job, { two_stages: 3, 'two_stages.second': 1 })).toEqual({ type: 3, stages: new Map([[2, 1]]) });
    expect(capsOf(job, { 'two_stages.first': 2 })).toEqual({ type: null, stages: new Map([[1, 2]]) });
    expect(capsOf(job, { other: 2, 'two_stages.third': 1 })).toBeNull();
    expect(unknownLimitKeys([job], { two_stages: 1, 'two_stages.third': 1, other: 2 })).toEqual([
      'two_stages.third',
      'other',
    ]);
  });
});
