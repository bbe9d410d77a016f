import { createClient, type CoreMachineClient } from '@coremachine/client';
import { dropSchemas, uniqueSchema } from '@coremachine/test-kit';
import type { ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SERVER_DIR, startTs } from './helpers.ts';

// CM_ROLE: the server process (apps/server src/main.ts, as deployed) in each role on one ledger.
// `api` serves HTTP and runs nothing (a submitted job waits, health says no worker serves its
// type); `worker` serves no HTTP and runs the jobs the API took; `all` does both.
const MAIN = join(SERVER_DIR, 'src/main.ts');

describe('CM_ROLE=api|worker|all', () => {
  const schema = uniqueSchema('cmroles');
  const children: ChildProcess[] = [];
  const env = { CM_SCHEMA: schema, CM_API_PORT: '0', CM_LOG_LEVEL: 'error', CM_SHUTDOWN_GRACE_SECONDS: '1' };
  const start = async (role: string) => {
    const p = await startTs(MAIN, [], new RegExp(`CoreMachine ${role} ready.*\\n`), { env: { ...env, CM_ROLE: role } });
    children.push(p.child);
    return { ...p, url: /ready at (http:\/\/\S+)/.exec(p.output())?.[1] ?? null };
  };
  let api: CoreMachineClient;

  beforeAll(async () => {
    const a = await start('api');
    expect(a.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
    api = createClient({ url: a.url! });
  });
  afterAll(async () => {
    for (const c of children) if (c.exitCode === null) c.kill('SIGKILL');
    await dropSchemas(schema);
  });

  it('api serves and runs nothing; worker serves nothing and runs the job; all does both', async () => {
    const { jobId } = await api.jobs.submit.mutate({ type: 'hello_world', params: { n: 2, message: 'roles' } });
    await new Promise((r) => setTimeout(r, 1500));
    expect((await api.jobs.get.query({ jobId })).status).toBe('queued');
    const idle = await api.health.query();
    expect(idle.workers).toBe(0);
    expect(idle.unservedTypes).toContain('hello_world');

    const w = await start('worker');
    expect(w.url).toBeNull();
    expect(w.output()).not.toMatch(/dashboard http/);
    const deadline = Date.now() + 30_000;
    let status = '';
    while (Date.now() < deadline && status !== 'completed') {
      status = (await api.jobs.get.query({ jobId })).status;
      await new Promise((r) => setTimeout(r, 100));
    }
    expect(status).toBe('completed');
    const served = await api.health.query();
    expect(served.workers).toBe(1);
    expect(served.unservedTypes).not.toContain('hello_world');

    const all = await start('all');
    expect(all.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
    const both = createClient({ url: all.url! });
    expect((await both.health.query()).workers).toBe(2);
    // Stop the worker-only process: the `all` process alone runs the next job.
    w.child.kill('SIGTERM');
    await new Promise((r) => w.child.once('exit', r));
    const { jobId: second } = await both.jobs.submit.mutate({ type: 'hello_world', params: { n: 1, message: 'all' } });
    const until = Date.now() + 30_000;
    status = '';
    while (Date.now() < until && status !== 'completed') {
      status = (await both.jobs.get.query({ jobId: second })).status;
      await new Promise((r) => setTimeout(r, 100));
    }
    expect(status).toBe('completed');
  });
});
