/**
 * GET /metrics against a real server (createApp, its own schema): who may read it, and that a
 * hello_world job moves the ledger gauges while it waits for a worker and the counters and
 * histograms once a worker runs it.
 */
import { dropSchemas, freePort, uniqueSchema } from '@coremachine/test-kit';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createApp, type App } from '../app.ts';
import { TokenStore } from '../auth/tokens.ts';
import { parseEnv } from '../env.ts';
import { routeRole } from '../auth/edge.ts';
import { routeLabel } from './metrics.ts';

/** `name{labels} value` lines → value by `name{labels}` (labels in the exposition's order). */
function parse(text: string): Map<string, number> {
  const out = new Map<string, number>();
  for (const line of text.split('\n')) {
    if (!line || line.startsWith('#')) continue;
    const i = line.lastIndexOf(' ');
    out.set(line.slice(0, i), Number(line.slice(i + 1)));
  }
  return out;
}

/** The sum over every series of `name` whose labels include all of `labels`. */
function sum(m: Map<string, number>, name: string, labels: Record<string, string> = {}): number {
  let total = 0;
  for (const [key, v] of m) {
    const brace = key.indexOf('{');
    if ((brace < 0 ? key : key.slice(0, brace)) !== name) continue;
    if (Object.entries(labels).every(([k, val]) => key.includes(`${k}="${val}"`))) total += v;
  }
  return total;
}

describe('GET /metrics', () => {
  const schema = uniqueSchema('cmmet');
  const admin = 'metrics-test-bootstrap-token-0123456789abcdef';
  let app: App;
  let readToken: string;
  let submitToken: string;
  const scrape = async (token = readToken) => {
    const res = await fetch(`${app.url}/metrics`, { headers: { authorization: `Bearer ${token}` } });
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toContain('text/plain');
    return parse(await res.text());
  };

  beforeAll(async () => {
    app = await createApp({
      // The in-process worker plans (control) but serves another type: hello_world's tasks wait
      // in the queue until the test starts a worker for them.
      env: parseEnv({
        CM_API_PORT: '0',
        CM_SCHEMA: schema,
        CM_LOG_LEVEL: 'error',
        CM_API_TOKEN: admin,
        CM_WORKER_JOB_TYPES: 'summarize_container',
      }),
    });
    const store = new TokenStore(app.machine.pool, schema);
    readToken = (await store.create({ name: 'prometheus', role: 'read' })).token;
    submitToken = (await store.create({ name: 'ci', role: 'submit' })).token;
  }, 60_000);
  afterAll(async () => {
    await app?.close();
    await dropSchemas(schema);
  });

  it('needs a read token (401 without, 401 with a wrong one) unless CM_METRICS_PUBLIC', async () => {
    expect((await fetch(`${app.url}/metrics`)).status).toBe(401);
    const wrong = await fetch(`${app.url}/metrics`, { headers: { authorization: 'Bearer nope-not-a-token' } });
    expect(wrong.status).toBe(401);
    const m = await scrape();
    // Default process metrics come along.
    expect(sum(m, 'process_cpu_user_seconds_total')).toBeGreaterThan(0);
    expect(sum(m, 'nodejs_heap_size_used_bytes')).toBeGreaterThan(0);
  });

  it('a job moves the gauges while it waits, then the counters and histograms when it runs', async () => {
    const before = await scrape();
    const submitted = await fetch(`${app.url}/api/v1/jobs`, {
      method: 'POST',
      headers: { authorization: `Bearer ${submitToken}`, 'content-type': 'application/json' },
      body: JSON.stringify({ type: 'hello_world', params: { n: 3, message: `metrics ${schema}` } }),
    });
    expect(submitted.status).toBe(201);
    const { jobId } = (await submitted.json()) as { jobId: string };

    // During: planned, its 3 greetings queued with no worker for them.
    let during = await scrape();
    for (let i = 0; i < 100 && sum(during, 'cm_tasks_queued', { type: 'hello_world' }) < 3; i++) {
      await new Promise((r) => setTimeout(r, 100));
      during = await scrape();
    }
    expect(sum(during, 'cm_tasks_queued', { type: 'hello_world' })).toBe(3);
    expect(sum(during, 'cm_jobs', { type: 'hello_world', status: 'processing' })).toBe(1);
    expect(sum(during, 'cm_oldest_queued_task_age_seconds', { type: 'hello_world' })).toBeGreaterThanOrEqual(0);
    expect(sum(during, 'cm_workers_live')).toBe(1);
    expect(sum(during, 'cm_jobs_submitted_total', { type: 'hello_world' })).toBe(
      sum(before, 'cm_jobs_submitted_total', { type: 'hello_world' }) + 1,
    );
    expect(sum(during, 'cm_tasks_started_total', { type: 'hello_world' })).toBe(
      sum(before, 'cm_tasks_started_total', { type: 'hello_world' }),
    );

    // A worker for hello_world runs both stages (3 greetings, 3 replies).
    const worker = await app.machine.startWorker({ jobTypes: ['hello_world'], control: false });
    try {
      for (let i = 0; i < 200; i++) {
        const job = await app.machine.getJob(jobId);
        if (job?.status === 'completed') break;
        await new Promise((r) => setTimeout(r, 100));
      }
      expect((await app.machine.getJob(jobId))?.status).toBe('completed');
      const after = await scrape();
      const delta = (name: string, labels: Record<string, string> = {}) =>
        sum(after, name, labels) - sum(before, name, labels);
      expect(delta('cm_tasks_started_total', { type: 'hello_world' })).toBe(6);
      expect(delta('cm_tasks_started_total', { type: 'hello_world', stage: 'greeting' })).toBe(3);
      expect(delta('cm_tasks_settled_total', { type: 'hello_world', outcome: 'completed' })).toBe(6);
      expect(delta('cm_task_duration_seconds_count', { type: 'hello_world', stage: 'reply' })).toBe(3);
      expect(delta('cm_task_duration_seconds_bucket', { type: 'hello_world', stage: 'reply', le: '+Inf' })).toBe(3);
      expect(delta('cm_task_duration_seconds_sum', { type: 'hello_world' })).toBeGreaterThan(0);
      expect(delta('cm_task_retries_total', { type: 'hello_world' })).toBe(0);
      expect(delta('cm_jobs_settled_total', { status: 'completed' })).toBe(1);
      expect(delta('cm_job_events_total', { kind: 'stage_completed' })).toBe(2);
      expect(sum(after, 'cm_jobs', { type: 'hello_world', status: 'completed' })).toBe(1);
      expect(sum(after, 'cm_tasks_queued', { type: 'hello_world' })).toBe(0);
      expect(sum(after, 'cm_workers_live')).toBe(2);
      // The submit request, timed under its route template.
      expect(
        delta('cm_http_request_duration_seconds_count', { method: 'POST', route: '/api/v1/jobs', status: '201' }),
      ).toBe(1);
      expect(sum(after, 'cm_http_request_duration_seconds_count', { route: '/metrics' })).toBeGreaterThan(0);
    } finally {
      await worker.stop();
    }
  }, 60_000);

  it('route labels keep ids and names out', () => {
    const known = (n: string) => n === 'jobs.get' || n === 'jobs.list';
    const id = 'a'.repeat(64);
    expect(routeLabel(`/api/v1/jobs/${id}/events`, 200, known)).toBe('/api/v1/jobs/{jobId}/events');
    expect(routeLabel('/api/v1/jobs/x/y/z', 404, known)).toBe('/api/v1/{unmatched}');
    expect(routeLabel('/trpc/jobs.get,jobs.list', 200, known)).toBe('/trpc/jobs.get,jobs.list');
    expect(routeLabel('/trpc/evil.name', 404, known)).toBe('/trpc/{unknown}');
    expect(routeLabel('/stac/collections/my-rasters/items', 200, known)).toBe('/stac/collections/…');
    expect(routeLabel('/features/roads', 200, known)).toBe('/features/…');
    expect(routeLabel('/assets/index-abc.js', 200, known)).toBe('/assets/…');
    expect(routeLabel('/some/page', 200, known)).toBe('/{static}');
    expect([routeRole('GET', '/metrics', true), routeRole('GET', '/metrics', true, true)]).toEqual(['read', 'public']);
  });
});

describe('a worker-only process', () => {
  const schema = uniqueSchema('cmmetw');
  let app: App;
  let port: number;
  beforeAll(async () => {
    port = await freePort();
    app = await createApp({
      env: parseEnv({
        CM_SCHEMA: schema,
        CM_ROLE: 'worker',
        CM_LOG_LEVEL: 'error',
        CM_METRICS_PORT: String(port),
        CM_WORKER_JOB_TYPES: 'hello_world',
      }),
    });
  }, 60_000);
  afterAll(async () => {
    await app?.close();
    await dropSchemas(schema);
  });

  it('serves /metrics and /healthz on CM_METRICS_PORT (no API)', async () => {
    expect(app.url).toBeNull();
    const res = await fetch(`http://127.0.0.1:${port}/metrics`);
    expect(res.status).toBe(200);
    const m = parse(await res.text());
    expect(sum(m, 'cm_workers_live')).toBe(1);
    expect((await fetch(`http://127.0.0.1:${port}/healthz`)).status).toBe(200);
    expect((await fetch(`http://127.0.0.1:${port}/api/v1/jobs`)).status).toBe(404);
  });
});
