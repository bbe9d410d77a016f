/**
 * The conformance suite can fail: a small job (`blob_size`, the size of one blob) passes every
 * check, and deliberately broken copies of it are each reported by the check they break.
 */
import { randomBytes } from 'node:crypto';
import { defineJob, defineStage, permanentError, type AnyJobDefinition } from '@coremachine/core-machine';
import { blobPathSchema, containerNameSchema, createStorage, storageConfigFromEnv } from '@coremachine/storage';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import {
  checkIdempotentResubmit,
  checkInvalidParameters,
  checkMissingInput,
  checkNoLeaks,
  checkPluginCompliance,
  checkSample,
  createTestMachine,
  type JobFixtures,
  type TestMachine,
} from '../src/index.ts';

const storage = createStorage(storageConfigFromEnv());
const CONTAINER = `conf-detect-${randomBytes(4).toString('hex')}`;

interface Variant {
  type: string;
  /** The missing-blob error: how the handler reports a blob that does not exist. */
  missing?: 'documented' | 'stack' | 'plain-error';
  params?: z.ZodType;
  result?: z.ZodType;
  aggregateAt?: () => unknown;
  jobId?: () => string;
}

const strictParams = z.strictObject({ container_name: containerNameSchema, blob_name: blobPathSchema });
type Params = z.output<typeof strictParams>;

/** The size of one blob; each variant breaks one promise. */
function blobSizeJob(v: Variant): AnyJobDefinition {
  const stat = defineStage<Params>()({
    name: 'stat',
    input: z.object({ container_name: z.string(), blob_name: z.string() }),
    output: z.object({ size_bytes: z.number().int() }),
    plan: ({ params }) => [
      { key: 'stat', input: { container_name: params.container_name, blob_name: String(params.blob_name) } },
    ],
    retry: { maxAttempts: 2, baseDelayMs: 10, maxDelayMs: 10 },
    handler: async (input, ctx) => {
      const s = await ctx.services.storage.stat(input.container_name, input.blob_name);
      if (s.exists) return { size_bytes: s.size };
      const message = `${input.container_name}/${input.blob_name} does not exist`;
      if (v.missing === 'plain-error') throw new Error(message);
      if (v.missing === 'stack') throw permanentError('BLOB_NOT_FOUND', `${message}\n${new Error('lookup').stack}`);
      throw permanentError('BLOB_NOT_FOUND', message);
    },
  });
  return defineJob({
    type: v.type,
    version: '1.0.0',
    description: 'The size of one blob',
    parameters: (v.params ?? strictParams) as typeof strictParams,
    ...(v.jobId ? { generateJobId: v.jobId } : {}),
    stages: [stat],
    result: v.result ?? z.object({ blob_name: z.string(), size_bytes: z.number().int() }),
    aggregate: async (ctx) => {
      const [task] = await ctx.tasks('stat');
      const size = (task!.output as { size_bytes: number }).size_bytes;
      return {
        blob_name: String(ctx.params.blob_name),
        size_bytes: size,
        ...(v.aggregateAt ? { checked_at: v.aggregateAt() } : {}),
      };
    },
  });
}

const good = blobSizeJob({ type: 'blob_size' });
const broken = {
  stackTrace: blobSizeJob({ type: 'blob_size_stack', missing: 'stack' }),
  transient: blobSizeJob({ type: 'blob_size_transient', missing: 'plain-error' }),
  // The core checks the aggregate against the schema, but a Date becomes a string once stored.
  storedResult: blobSizeJob({
    type: 'blob_size_date',
    result: z.object({ blob_name: z.string(), size_bytes: z.number(), checked_at: z.date() }),
    aggregateAt: () => new Date(),
  }),
  wrongShape: blobSizeJob({
    type: 'blob_size_shape',
    result: z.object({ blob_name: z.string(), size_mb: z.number() }),
  }),
  notIdempotent: blobSizeJob({ type: 'blob_size_random_id', jobId: () => randomBytes(32).toString('hex') }),
  laxParams: blobSizeJob({
    type: 'blob_size_lax',
    params: z.object({ container_name: containerNameSchema, blob_name: z.any() }),
  }),
};

const fixtures = (type: string): JobFixtures => ({
  sample: { params: { container_name: CONTAINER, blob_name: 'a/one.txt' } },
  invalid: [{ params: { container_name: CONTAINER, blob_name: 42 }, field: 'params.blob_name' }],
  missingInputs: [
    {
      name: 'missing blob',
      params: { container_name: CONTAINER, blob_name: `${type}/gone.txt` },
      code: 'BLOB_NOT_FOUND',
      messageIncludes: `${type}/gone.txt`,
    },
  ],
  watch: { containers: [CONTAINER] },
});

let tm: TestMachine;
beforeAll(async () => {
  await storage.ensureContainer(CONTAINER);
  await storage.uploadData(CONTAINER, 'a/one.txt', 'twelve bytes');
  tm = await createTestMachine({ plugins: [good, ...Object.values(broken)] });
});
afterAll(async () => {
  await tm?.close();
  await storage.deleteContainer(CONTAINER);
});

describe('the conformance checks', () => {
  it('pass for the sound job', async () => {
    const f = fixtures(good.type);
    expect(checkPluginCompliance(good)).toEqual([]);
    const sample = await checkSample(tm, good, f.sample);
    expect(sample.problems).toEqual([]);
    expect(sample.job?.result).toEqual({ blob_name: 'a/one.txt', size_bytes: 12 });
    expect(await checkIdempotentResubmit(tm, good, f.sample.params, sample.job!.id)).toEqual([]);
    expect(await checkInvalidParameters(tm, good, f.invalid[0]!, f.watch)).toEqual([]);
    expect((await checkMissingInput(tm, good, f.missingInputs![0]!)).problems).toEqual([]);
  });

  it('report a missing-blob error that carries a stack trace', async () => {
    const { problems, job } = await checkMissingInput(tm, broken.stackTrace, fixtures('stack').missingInputs![0]!);
    expect(job?.status).toBe('failed');
    expect(job?.error?.code).toBe('BLOB_NOT_FOUND'); // the code is right: only the leak is wrong
    expect(problems.some((p) => /job \w+ error carries a stack trace/.test(p))).toBe(true);
    expect(problems.some((p) => /task stat\/stat error carries a stack trace/.test(p))).toBe(true);
    expect(problems.some((p) => /carries a source position: .*\.ts:\d+/.test(p))).toBe(true);
    // The sweep over the whole ledger finds it too (and only it, the sound job's errors are clean).
    const leaks = await checkNoLeaks(tm);
    expect(leaks.length).toBeGreaterThan(0);
    expect(leaks.every((p) => p.startsWith(`job ${job!.id} `) || p.startsWith('task stat/stat '))).toBe(true);
  });

  it('report a missing blob that is retried as an unclassified error instead of failing at attempt 1', async () => {
    const { problems } = await checkMissingInput(tm, broken.transient, fixtures('transient').missingInputs![0]!);
    expect(problems).toContain('job error code is TASK_ERROR, not BLOB_NOT_FOUND');
    expect(problems.some((p) => p.startsWith('no task failed with BLOB_NOT_FOUND'))).toBe(true);
  });

  it('report a missing-input error that does not name the file', async () => {
    const c = { ...fixtures('unnamed').missingInputs![0]!, messageIncludes: 'elsewhere/other.txt' };
    const { problems } = await checkMissingInput(tm, good, c);
    expect(problems).toEqual([
      `task stat/stat error does not name "elsewhere/other.txt": "${CONTAINER}/unnamed/gone.txt does not exist"`,
    ]);
  });

  it('report a stored result that does not match the result schema', async () => {
    const { problems, job } = await checkSample(tm, broken.storedResult, fixtures('date').sample);
    expect(job?.status).toBe('completed');
    expect(problems).toHaveLength(1);
    expect(problems[0]).toMatch(/^stored result does not match the result schema at result\.checked_at: /);
  });

  it('report an aggregate whose result has the wrong shape', async () => {
    const { problems, job } = await checkSample(tm, broken.wrongShape, fixtures('shape').sample);
    expect(job?.status).toBe('failed');
    expect(problems).toHaveLength(1);
    expect(problems[0]).toMatch(/^sample job ended failed, not completed; error: \w+: .*size_mb/);
  });

  it('report a job id that changes on every submit', async () => {
    const f = fixtures('random');
    const { job } = await checkSample(tm, broken.notIdempotent, f.sample);
    const problems = await checkIdempotentResubmit(tm, broken.notIdempotent, f.sample.params, job!.id);
    expect(problems).toHaveLength(3);
    expect(problems[0]).toMatch(/^second submit returned job [0-9a-f]{64}, not /);
    expect(problems[1]).toBe('second submit returned idempotent: false');
    expect(problems[2]).toBe('second submit wrote 1 job row(s)');
  });

  it('report parameters that are accepted, and what the accepted job wrote', async () => {
    const f = fixtures('lax');
    const problems = await checkInvalidParameters(tm, broken.laxParams, f.invalid[0]!, f.watch);
    expect(problems[0]).toMatch(/^accepted \{"container_name":"conf-detect-[0-9a-f]+","blob_name":42\} \(job \w+\)/);
    expect(problems).toContain(`${tm.schema}.jobs: 1 row(s) written`);
    expect(problems).toContain(`${tm.schema}.tasks: 1 row(s) written`);
    // and its messages (plan, task, aggregate: how many depends on how far it got)
    expect(problems.some((p) => p.startsWith(`${tm.schema}_queue.job: `))).toBe(true);
  });

  it('report a manifest the server would refuse', () => {
    const { aggregate: _dropped, ...noAggregate } = good;
    expect(checkPluginCompliance(noAggregate, '@acme/job-blob-size')).toEqual([
      "@acme/job-blob-size: aggregate_job_results: expected 'aggregate' to be a function, received undefined",
    ]);
  });
});
