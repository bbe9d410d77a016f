import { createApp, parseEnv, type App } from '@coremachine/server';
import { createClient, errorIssues, type CoreMachineClient, type JobView } from '@coremachine/client';
import { dropSchemas, uniqueSchema } from '@coremachine/test-kit';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runTs } from './helpers.ts';

describe('tRPC API, typed client and CLI against a running server', () => {
  let app: App;
  let cm: CoreMachineClient;
  const schema = uniqueSchema('cmapi');
  beforeAll(async () => {
    app = await createApp({
      env: parseEnv({ CM_API_PORT: '0', CM_SCHEMA: schema, CM_LOG_LEVEL: 'error' }),
      config: { retryBaseDelayMs: 50, pollingIntervalSeconds: 0.5 },
    });
    cm = createClient({ url: app.url! });
  });
  afterAll(async () => {
    await app.close();
    await dropSchemas(schema);
  });

  it('health reports database, queue, plugins, storage and version', async () => {
    const h = await cm.health.query();
    expect(h).toMatchObject({
      status: 'healthy',
      version: '0.1.0',
      database: { ok: true },
      queue: { ok: true },
      workers: 1,
      plugins: { ok: true },
    });
    expect(h.plugins.loaded).toContain('hello_world');
    const res = await fetch(`${app.url}/health`);
    expect(res.status).toBe(200);
    expect(((await res.json()) as { storage: { ok: boolean } }).storage.ok).toBe(true);
  });

  it('types lists each job type with the JSON Schema of its parameters', async () => {
    const types = await cm.jobs.types.query();
    const hello = types.find((t) => t.type === 'hello_world')!;
    expect(hello.stages).toEqual(['greeting', 'reply']);
    expect(hello.parametersSchema).toMatchObject({
      type: 'object',
      additionalProperties: false,
      properties: { message: { type: 'string', default: 'Hello World' }, failure_rate: { minimum: 0, maximum: 1 } },
    });
  });

  it('submit, watch (SSE) until settled, get, tasks, events', async () => {
    const { jobId, idempotent } = await cm.jobs.submit.mutate({
      type: 'hello_world',
      params: { n: 12, message: 'api' },
    });
    expect(idempotent).toBe(false);
    const seen: JobView[] = [];
    const final = await new Promise<JobView>((resolve, reject) => {
      const sub = cm.jobs.watch.subscribe(
        { jobId, intervalMs: 100 },
        {
          onData: (job) => {
            seen.push(job as JobView);
            if (['completed', 'failed'].includes(job.status)) {
              sub.unsubscribe();
              resolve(job as JobView);
            }
          },
          onError: reject,
        },
      );
    });
    expect(final.status).toBe('completed');
    expect(seen.length).toBeGreaterThanOrEqual(1);
    const job = await cm.jobs.get.query({ jobId });
    expect(job.result).toMatchObject({ summary: { greetings_succeeded: 12, replies_succeeded: 12 } });
    const page1 = await cm.jobs.tasks.query({ jobId, stage: 2, limit: 5 });
    const page2 = await cm.jobs.tasks.query({ jobId, stage: 2, limit: 5, cursor: page1.nextCursor });
    const page3 = await cm.jobs.tasks.query({ jobId, stage: 2, limit: 5, cursor: page2.nextCursor });
    expect([page1.items.length, page2.items.length, page3.items.length]).toEqual([5, 5, 2]);
    expect(page3.nextCursor).toBeNull();
    expect(new Set([...page1.items, ...page2.items, ...page3.items].map((t) => t.key)).size).toBe(12);
    const events = await cm.jobs.events.query({ jobId });
    expect(events.map((e) => e.kind)).toEqual([
      'job_submitted',
      'stage_started',
      'stage_completed',
      'stage_started',
      'stage_completed',
      'job_completed',
    ]);
  });

  it('list filters by status and type and paginates with a cursor', async () => {
    for (let i = 0; i < 3; i++)
      await cm.jobs.submit.mutate({ type: 'hello_world', params: { n: 1, message: `list ${i}` } });
    const all = await cm.jobs.list.query({ type: 'hello_world', limit: 2 });
    expect(all.items).toHaveLength(2);
    const next = await cm.jobs.list.query({ type: 'hello_world', limit: 2, cursor: all.nextCursor });
    expect(next.items.length).toBeGreaterThanOrEqual(1);
    expect(new Set([...all.items, ...next.items].map((j) => j.id)).size).toBe(all.items.length + next.items.length);
    const none = await cm.jobs.list.query({
      type: 'hello_world',
      createdAfter: new Date(Date.now() + 3_600_000).toISOString(),
    });
    expect(none.items).toHaveLength(0);
    const failed = await cm.jobs.list.query({ status: 'failed' });
    expect(failed.items.every((j) => j.status === 'failed')).toBe(true);
  });

  it('bad input is a BAD_REQUEST naming the field, and nothing is written', async () => {
    const before = (await cm.jobs.list.query({ limit: 200 })).items.length;
    for (const [params, field] of [
      [{ n: 0 }, 'params.n'],
      [{ n: 'abc' }, 'params.n'],
      [{ n: 1001 }, 'params.n'],
      [{ n: 1, extra: true }, 'params.extra'],
    ] as const) {
      const err = await cm.jobs.submit
        .mutate({ type: 'hello_world', params: params as never })
        .catch((e: unknown) => e);
      expect((err as { data: { code: string } }).data.code).toBe('BAD_REQUEST');
      expect(errorIssues(err).map((i) => i.path)).toContain(field);
    }
    const unknown = await cm.jobs.submit.mutate({ type: 'nope' as never, params: {} }).catch((e: unknown) => e);
    expect((unknown as { data: { code: string } }).data.code).toBe('BAD_REQUEST');
    expect(errorIssues(unknown)[0]?.path).toBe('type');
    const notFound = await cm.jobs.get.query({ jobId: 'f'.repeat(64) }).catch((e: unknown) => e);
    expect((notFound as { data: { code: string } }).data.code).toBe('NOT_FOUND');
    expect((await cm.jobs.list.query({ limit: 200 })).items.length).toBe(before);
  });

  it('cm submit --wait --json exits 0 with the job; a failing job exits 1 with its error', async () => {
    const ok = await runTs('src/cli/main.ts', [
      'submit',
      'hello_world',
      '--params',
      '{"n":3,"message":"cli"}',
      '--wait',
      '--json',
      '--url',
      app.url!,
    ]);
    expect(ok.code).toBe(0);
    const job = JSON.parse(ok.stdout) as JobView;
    expect(job).toMatchObject({
      type: 'hello_world',
      status: 'completed',
      stages: [
        { name: 'greeting', completed: 3 },
        { name: 'reply', completed: 3 },
      ],
    });
    expect(job.result).toMatchObject({ n: 3, message: 'cli' });

    const bad = await runTs('src/cli/main.ts', ['submit', 'hello_world', '--params', '{"n":0}', '--url', app.url!]);
    expect(bad.code).toBe(1);
    expect(bad.stderr).toContain('params.n');

    const failing = await runTs('src/cli/main.ts', [
      'submit',
      'hello_world',
      '--params',
      '{"n":5,"message":"doomed","failure_rate":1}',
      '--wait',
      '--url',
      app.url!,
    ]);
    expect(failing.code).toBe(1);
    expect(failing.stdout).toMatch(/failed/);
    expect(failing.stdout).toContain('INJECTED_FAILURE');

    const list = await runTs('src/cli/main.ts', ['list', '--json', '--url', app.url!]);
    expect(list.code).toBe(0);
    expect((JSON.parse(list.stdout) as { items: unknown[] }).items.length).toBeGreaterThan(0);
  });
});
