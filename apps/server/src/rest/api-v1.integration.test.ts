/**
 * REST /api/v1 and its OpenAPI document against a real server (createApp with a worker, a
 * bootstrap token and a submit token), and the standard-library Python client of
 * examples/python run against it.
 */
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { Validator } from '@seriousme/openapi-schema-validator';
import { dropSchemas, uniqueSchema } from '@coremachine/test-kit';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createApp, type App } from '../app.ts';
import { TokenStore } from '../auth/tokens.ts';
import { parseEnv } from '../env.ts';
import { appRouter } from '../router.ts';
import { RESPONSES } from './responses.ts';

const REPO = fileURLToPath(new URL('../../../../', import.meta.url));

function run(cmd: string, args: string[], env: Record<string, string>) {
  return new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve) => {
    const child = spawn(cmd, args, { cwd: REPO, env: { ...process.env, ...env } });
    let stdout = '',
      stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    child.on('exit', (code) => resolve({ code, stdout, stderr }));
  });
}

describe('REST /api/v1 and OpenAPI 3.1', () => {
  const schema = uniqueSchema('cmrest');
  let app: App;
  let base: string;
  let token: string;
  let readToken: string;
  const api = async (method: string, path: string, body?: unknown, who = token) => {
    const res = await fetch(`${base}/api/v1${path}`, {
      method,
      headers: { authorization: `Bearer ${who}`, ...(body ? { 'content-type': 'application/json' } : {}) },
      ...(body ? { body: JSON.stringify(body) } : {}),
    });
    return { status: res.status, body: (await res.json()) as any };
  };

  beforeAll(async () => {
    app = await createApp({
      env: parseEnv({
        CM_API_PORT: '0',
        CM_SCHEMA: schema,
        CM_LOG_LEVEL: 'error',
        CM_API_TOKEN: 'rest-test-bootstrap-token-0123456789abcdef',
      }),
      config: { maxAttempts: 2, retryBaseDelayMs: 50, retryMaxDelayMs: 50 },
    });
    base = app.url!;
    const store = new TokenStore(app.machine.pool, schema);
    token = (await store.create({ name: 'py', role: 'submit' })).token;
    readToken = (await store.create({ name: 'reader', role: 'read' })).token;
  }, 60_000);
  afterAll(async () => {
    await app?.close();
    await dropSchemas(schema);
  });

  it('publishes a valid OpenAPI 3.1 document listing every jobs procedure, and a docs page', async () => {
    const res = await fetch(`${base}/api/v1/openapi.json`);
    expect(res.status).toBe(200);
    const doc = (await res.json()) as any;
    const validator = new Validator();
    const result = await validator.validate(doc);
    expect(result.errors ?? []).toEqual([]);
    expect(result.valid).toBe(true);
    expect(validator.version).toBe('3.1');
    const listed = Object.values(doc.paths as Record<string, Record<string, any>>)
      .flatMap((ops) => Object.values(ops))
      .map((op) => op['x-trpc-procedure'] as string)
      .sort();
    const jobsProcedures = Object.keys(appRouter._def.procedures)
      .filter((p) => p.startsWith('jobs.'))
      .sort();
    expect(listed).toEqual(jobsProcedures);
    // Parameters come from the procedures' zod schemas; the submit body from each type's schema.
    const list = doc.paths['/jobs'].get;
    const limit = list.parameters.find((p: any) => p.name === 'limit');
    expect(limit.schema).toMatchObject({ type: 'integer', minimum: 1, maximum: 200, default: 20 });
    expect(list.parameters.find((p: any) => p.name === 'status').schema.enum).toContain('completed_with_errors');
    expect(doc.paths['/jobs/{jobId}'].get.parameters[0].schema.pattern).toBe('^[0-9a-f]{64}$');
    expect(doc.paths['/jobs/{jobId}/cancel'].post['x-required-role']).toBe('admin');
    const branches = doc.components.schemas.SubmitRequest.oneOf as any[];
    expect(branches.map((b) => b.title).sort()).toEqual(
      app.machine
        .types()
        .map((t) => t.type)
        .sort(),
    );
    const hello = branches.find((b) => b.title === 'hello_world');
    expect(hello.properties.params.properties.n).toMatchObject({ minimum: 1, maximum: 1000 });
    const docs = await fetch(`${base}/api/v1/docs`);
    expect([docs.status, docs.headers.get('content-type')]).toEqual([200, 'text/html; charset=utf-8']);
    expect(await docs.text()).toContain('openapi.json');
  });

  it('submits, lists with filters and a cursor, gets, and answers field errors with 400', async () => {
    const params = { n: 2, message: `rest ${schema}` };
    const first = await api('POST', '/jobs', { type: 'hello_world', params });
    expect([first.status, first.body.idempotent]).toEqual([201, false]);
    const again = await api('POST', '/jobs', { type: 'hello_world', params });
    expect([again.status, again.body.jobId, again.body.idempotent]).toEqual([200, first.body.jobId, true]);
    const second = await api('POST', '/jobs', { type: 'hello_world', params: { n: 1, message: `second ${schema}` } });
    expect(second.status).toBe(201);

    const bad = await api('POST', '/jobs', { type: 'hello_world', params: { n: 0, colour: 'red' } });
    expect(bad.status).toBe(400);
    expect(bad.body.cmCode).toBe('CM_ERR_INVALID_PARAMETERS');
    expect(bad.body.issues.map((i: any) => i.path).sort()).toEqual(['params.colour', 'params.n']);
    const badQuery = await api('GET', '/jobs?limit=0');
    expect([badQuery.status, badQuery.body.issues[0].path]).toEqual([400, 'limit']);

    const page1 = await api('GET', '/jobs?type=hello_world&limit=1');
    expect(page1.status).toBe(200);
    expect(page1.body.items.map((j: any) => j.id)).toEqual([second.body.jobId]);
    const page2 = await api(
      'GET',
      `/jobs?type=hello_world&limit=1&cursor=${encodeURIComponent(page1.body.nextCursor)}`,
    );
    expect(page2.body.items.map((j: any) => j.id)).toEqual([first.body.jobId]);
    expect((await api('GET', '/jobs?type=no_such_type')).body.items).toEqual([]);

    const got = await api('GET', `/jobs/${first.body.jobId}`);
    expect([got.status, got.body.type]).toEqual([200, 'hello_world']);
    const missing = await api('GET', `/jobs/${'0'.repeat(64)}`);
    expect([missing.status, missing.body.cmCode]).toEqual([404, 'CM_ERR_JOB_NOT_FOUND']);
    expect((await api('GET', '/jobs/not-an-id')).status).toBe(400);
    expect((await api('DELETE', '/jobs')).status).toBe(405);
    expect((await api('GET', '/nothing-here')).status).toBe(404);
    // A read token lists but cannot submit; a submit token cannot cancel.
    expect((await api('GET', '/jobs', undefined, readToken)).status).toBe(200);
    expect((await api('POST', '/jobs', { type: 'hello_world' }, readToken)).status).toBe(403);
    expect((await api('POST', `/jobs/${first.body.jobId}/cancel`)).status).toBe(403);
    const types = await api('GET', '/types');
    expect(types.body.map((t: any) => t.type)).toContain('hello_world');
  });

  it('streams a job with server-sent events until it settles; tasks and events follow', async () => {
    const { body } = await api('POST', '/jobs', { type: 'hello_world', params: { n: 3, message: `sse ${schema}` } });
    const res = await fetch(`${base}/api/v1/jobs/${body.jobId}/stream?intervalMs=100`, {
      headers: { authorization: `Bearer ${readToken}` },
    });
    expect(res.headers.get('content-type')).toBe('text/event-stream');
    const text = await res.text(); // ends when the job settles
    const frames = text.split('\n\n').filter((f) => f.startsWith('event:'));
    const jobs = frames.filter((f) => f.startsWith('event: job')).map((f) => JSON.parse(f.split('data: ')[1]!));
    expect(frames.at(-1)).toBe('event: end\ndata: {}');
    expect(jobs.at(-1).status).toBe('completed');
    expect(jobs.length).toBeGreaterThanOrEqual(2);
    const tasks = await api('GET', `/jobs/${body.jobId}/tasks?stage=1`);
    expect(tasks.body.items).toHaveLength(3);
    const events = await api('GET', `/jobs/${body.jobId}/events?afterId=0&limit=500`);
    expect(events.body.map((e: any) => e.kind)).toEqual(
      expect.arrayContaining(['job_submitted', 'actor', 'job_completed']),
    );
    expect(events.body.find((e: any) => e.kind === 'actor').data.token).toBe('py');
  });

  it('answers with the shapes its OpenAPI document declares (response schemas from zod, refs resolved)', async () => {
    const doc = (await (await fetch(`${base}/api/v1/openapi.json`)).json()) as any;
    const refs = [...JSON.stringify(doc).matchAll(/"\$ref":"#\/components\/schemas\/([^"]+)"/g)].map((m) => m[1]!);
    expect(refs.filter((r) => !(r in doc.components.schemas))).toEqual([]);
    expect(doc.paths['/jobs/{jobId}'].get.responses['200'].content['application/json'].schema).toEqual({
      $ref: '#/components/schemas/Job',
    });
    expect(doc.components.schemas.Task.required).toContain('maxAttempts');
    // Real answers parse with the same schemas (strict objects: an undeclared field fails).
    const submitted = await api('POST', '/jobs', { type: 'hello_world', params: { n: 2, message: `shape ${schema}` } });
    const jobId = submitted.body.jobId as string;
    for (let i = 0; i < 100 && (await api('GET', `/jobs/${jobId}`)).body.status !== 'completed'; i++)
      await new Promise((r) => setTimeout(r, 100));
    const answers: Array<[string, unknown]> = [
      ['jobs.submit', submitted.body],
      ['jobs.get', (await api('GET', `/jobs/${jobId}`)).body],
      ['jobs.list', (await api('GET', '/jobs?limit=5')).body],
      ['jobs.tasks', (await api('GET', `/jobs/${jobId}/tasks`)).body],
      ['jobs.events', (await api('GET', `/jobs/${jobId}/events`)).body],
      ['jobs.types', (await api('GET', '/types')).body],
      ['jobs.findIds', (await api('GET', `/job-ids?prefix=${jobId.slice(0, 8)}`)).body],
    ];
    for (const [procedure, body] of answers) {
      const parsed = RESPONSES[procedure]!.schema.safeParse(body);
      expect(parsed.success ? [] : parsed.error.issues, procedure).toEqual([]);
    }
  });

  it('the Python example (standard library only) submits, follows and prints the result or the field errors', async () => {
    const env = { CM_URL: base, CM_TOKEN: token };
    const script = 'examples/python/submit_job.py';
    const [ok, bad] = await Promise.all([
      run('python3', [script, 'hello_world', '--params', JSON.stringify({ n: 4, message: `python ${schema}` })], env),
      run('python3', [script, 'hello_world', '--params', '{"n": "many"}'], env),
    ]);
    expect(ok.stderr).toBe('');
    expect(ok.code).toBe(0);
    const lines = ok.stdout.split('\n');
    expect(lines[0]).toMatch(/^job [0-9a-f]{64} submitted$/);
    // Progress lines as the stages move, the last one all done: `completed  <stage> 4/4  <stage> 4/4`.
    const progress = lines.filter((l) => /^(queued|processing|completed)\s/.test(l));
    expect(progress.at(-1)).toMatch(/^completed\s+\S+ 4\/4\s+\S+ 4\/4$/);
    const result = JSON.parse(ok.stdout.slice(ok.stdout.indexOf('{')));
    expect(result.status).toBe('completed');
    expect(result.result.summary.greetings_succeeded).toBe(4);
    expect(bad.code).toBe(1);
    expect(bad.stderr.split('\n').slice(1, 2)).toEqual(['  params.n: n must be an integer from 1 to 1000']);
    // Without a token the API refuses it, and the client says so.
    const anon = await run('python3', [script, 'hello_world'], { CM_URL: base, CM_TOKEN: '' });
    expect(anon.code).toBe(1);
    expect(anon.stderr).toContain('refused: an API token is required');
  }, 60_000);
});
