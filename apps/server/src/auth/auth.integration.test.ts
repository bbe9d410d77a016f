/**
 * Access control and the edge, against real servers (createApp: PostgreSQL, Azurite), each in
 * its own schema: a secured API (tokens, CM_PUBLIC_READ=false, a CORS allow-list, a 64 KiB body
 * limit, no worker so jobs wait) and an anonymous one on loopback.
 */
import { spawn } from 'node:child_process';
import { request } from 'node:http';
import { fileURLToPath } from 'node:url';
import { dropSchemas, uniqueSchema, DATABASE_URL } from '@coremachine/test-kit';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createApp, type App } from '../app.ts';
import { parseEnv } from '../env.ts';
import { appRouter } from '../router.ts';
import { OPERATIONS } from '../rest/api-v1.ts';
import { routeRole } from './edge.ts';
import { TokenStore, type Role } from './tokens.ts';

const REPO = fileURLToPath(new URL('../../../../', import.meta.url));
const BOOTSTRAP = 'bootstrap-admin-token-for-tests-0123456789';
const ALLOWED_ORIGIN = 'https://app.example.org';

/** The role each procedure needs: a procedure missing here fails the first test. */
const EXPECTED: Record<string, Role | 'public'> = {
  health: 'public',
  'jobs.types': 'read',
  'jobs.compliance': 'read',
  'jobs.get': 'read',
  'jobs.list': 'read',
  'jobs.watchList': 'read',
  'jobs.findIds': 'read',
  'jobs.tasks': 'read',
  'jobs.events': 'read',
  'jobs.watch': 'read',
  'jobs.submit': 'submit',
  'jobs.cancel': 'admin',
  'jobs.retry': 'admin',
  'jobs.rerun': 'admin',
  'jobs.delete': 'admin',
  'jobs.purge': 'admin',
  'tokens.list': 'admin',
  'tokens.create': 'admin',
  'tokens.revoke': 'admin',
};

type Who = 'none' | 'wrong' | Role;
const WHO: Who[] = ['none', 'wrong', 'read', 'submit', 'admin'];
const RANK: Record<Role | 'public', number> = { public: -1, read: 0, submit: 1, admin: 2 };

/** The status a caller should get: 401 without or with a wrong token, 403 below the role, else neither. */
function expected(who: Who, need: Role | 'public'): 401 | 403 | 'ok' {
  if (who === 'wrong') return 401;
  if (need === 'public') return 'ok';
  if (who === 'none') return 401;
  return RANK[who] >= RANK[need] ? 'ok' : 403;
}

interface Raw {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: string;
}

/** node:http (fetch may not set Host); resolves at the response, aborting an endless stream. */
function raw(
  base: string,
  method: string,
  path: string,
  headers: Record<string, string> = {},
  body?: string | { chunks: number; size: number },
): Promise<Raw> {
  return new Promise((resolve, reject) => {
    const req = request(`${base}${path}`, { method, headers }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      if (String(res.headers['content-type']).startsWith('text/event-stream')) {
        resolve({ status: res.statusCode!, headers: res.headers, body: '' });
        req.destroy();
        return;
      }
      res.on('data', (d: string) => (text += d));
      res.on('end', () => resolve({ status: res.statusCode!, headers: res.headers, body: text }));
      res.on('error', reject);
    });
    req.on('error', (err) => reject(err));
    if (typeof body === 'string') req.end(body);
    else if (body) {
      // A chunked body (no content-length), written as the socket takes it.
      const chunk = Buffer.alloc(body.size, 0x20);
      let left = body.chunks;
      const pump = () => {
        while (left > 0) {
          left -= 1;
          if (!req.write(chunk)) return void req.once('drain', pump);
        }
        req.end();
      };
      req.on('error', () => undefined);
      pump();
    } else req.end();
  });
}

function sh(
  line: string,
  env: Record<string, string>,
): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn('bash', ['-c', line], { cwd: REPO, env: { ...process.env, ...env } });
    let stdout = '',
      stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    child.on('exit', (code) => resolve({ code, stdout, stderr }));
  });
}

describe('access control (tokens and roles)', () => {
  const schema = uniqueSchema('cmauth');
  let app: App;
  let base: string;
  let store: TokenStore;
  const tokens: Record<Role, string> = { read: '', submit: '', admin: '' };
  const auth = (who: Who): Record<string, string> =>
    who === 'none'
      ? {}
      : { authorization: `Bearer ${who === 'wrong' ? 'cm_not-a-token-at-all-000000000000000000000' : tokens[who]}` };

  beforeAll(async () => {
    app = await createApp({
      env: parseEnv({
        CM_API_PORT: '0',
        CM_SCHEMA: schema,
        CM_LOG_LEVEL: 'error',
        CM_ROLE: 'api',
        CM_API_TOKEN: BOOTSTRAP,
        CM_PUBLIC_READ: 'false',
        CM_CORS_ORIGINS: ALLOWED_ORIGIN,
        CM_MAX_BODY_BYTES: String(64 * 1024),
      }),
    });
    base = app.url!;
    store = new TokenStore(app.machine.pool, schema);
    for (const role of ['read', 'submit', 'admin'] as const)
      tokens[role] = (await store.create({ name: `t-${role}`, role })).token;
  }, 60_000);
  afterAll(async () => {
    await app?.close();
    await dropSchemas(schema);
  });

  it('gives every tRPC procedure a role: 401 without or with a wrong token, 403 below it', async () => {
    const procedures = appRouter._def.procedures as unknown as Record<
      string,
      { _def: { type: 'query' | 'mutation' | 'subscription'; meta?: { role?: string } } }
    >;
    // A new procedure must be added to EXPECTED (and so be given a role on purpose).
    expect(Object.keys(procedures).sort()).toEqual(Object.keys(EXPECTED).sort());
    const failures: string[] = [];
    let checked = 0;
    for (const [path, proc] of Object.entries(procedures)) {
      expect(proc._def.meta?.role, path).toBe(EXPECTED[path]);
      for (const who of WHO) {
        // No input: the role is checked before the input, so an allowed caller gets 400 or 200.
        const r =
          proc._def.type === 'mutation'
            ? await raw(base, 'POST', `/trpc/${path}`, { ...auth(who), 'content-type': 'application/json' }, '{}')
            : await raw(base, 'GET', `/trpc/${path}`, auth(who));
        const want = expected(who, EXPECTED[path]!);
        const got = r.status === 401 || r.status === 403 ? r.status : 'ok';
        checked += 1;
        if (got !== want) failures.push(`${path} as ${who}: ${r.status} ${r.body.slice(0, 120)}`);
      }
    }
    expect(failures).toEqual([]);
    expect(checked).toBe(Object.keys(EXPECTED).length * WHO.length);
  });

  it('checks every REST route the same way (/api/v1 by procedure, STAC and Features by method)', async () => {
    const jobId = 'f'.repeat(64);
    const routes: Array<[string, string, Role | 'public']> = [
      ...OPERATIONS.map(
        (op) =>
          [op.method, `/api/v1${op.path.replace('{jobId}', jobId)}`, EXPECTED[op.procedure]!] as [string, string, Role],
      ),
      ['GET', '/api/v1/openapi.json', 'public'],
      ['GET', '/api/v1/docs', 'public'],
      ['GET', '/health', 'public'],
      ['GET', '/readyz', 'public'],
      ['GET', '/healthz', 'public'],
      ['GET', '/metrics', 'read'],
      ['GET', '/stac', 'read'],
      ['GET', '/stac/collections', 'read'],
      ['POST', '/stac/search', 'read'],
      ['POST', '/stac/collections', 'admin'],
      ['PUT', '/stac/collections/auth-test', 'admin'],
      ['GET', '/features', 'read'],
      ['GET', '/features/collections', 'read'],
    ];
    const failures: string[] = [];
    for (const [method, path, need] of routes)
      for (const who of WHO) {
        const r = await raw(
          base,
          method,
          path,
          { ...auth(who), 'content-type': 'application/json' },
          // node:http sends a DELETE body without framing (no length, not chunked): none sent.
          method === 'GET' || method === 'DELETE' ? undefined : '{}',
        );
        const got = r.status === 401 || r.status === 403 ? r.status : 'ok';
        if (got !== expected(who, need))
          failures.push(`${method} ${path} as ${who}: ${r.status} ${r.body.slice(0, 100)}`);
        if (r.status === 401) expect(JSON.parse(r.body).code, `${method} ${path}`).toMatch(/Unauthorized|UNAUTHORIZED/);
      }
    expect(failures).toEqual([]);
    // The empty collection body above was refused as invalid, not written.
    const none = await raw(base, 'GET', '/stac/collections/auth-test', auth('read'));
    expect(none.status).toBe(404);
    // The same role table holds with public reads (the default): reads open, writes admin.
    expect(routeRole('GET', '/stac/collections', true)).toBe('public');
    expect(routeRole('POST', '/stac/search', true)).toBe('public');
    expect(routeRole('PUT', '/stac/collections/x', true)).toBe('admin');
    expect(routeRole('GET', '/features/collections/x/tiles/WebMercatorQuad/0/0/0', false)).toBe('read');
  });

  it("records the token's name on the job's submit, cancel and retry", async () => {
    const post = (path: string, who: Role, body: unknown) =>
      raw(base, 'POST', path, { ...auth(who), 'content-type': 'application/json' }, JSON.stringify(body));
    const submitted = await post('/trpc/jobs.submit', 'submit', {
      type: 'hello_world',
      params: { n: 2, message: schema },
    });
    expect(submitted.status).toBe(200);
    const { jobId } = JSON.parse(submitted.body).result.data as { jobId: string };
    expect((await post('/trpc/jobs.cancel', 'submit', { jobId })).status).toBe(403);
    expect((await post('/trpc/jobs.cancel', 'admin', { jobId })).status).toBe(200);
    expect((await post(`/api/v1/jobs/${jobId}/retry`, 'admin', {})).status).toBe(200);
    const bootstrap = await raw(base, 'POST', `/api/v1/jobs/${jobId}/cancel`, { authorization: `Bearer ${BOOTSTRAP}` });
    expect(bootstrap.status).toBe(200);
    const events = await app.machine.events(jobId);
    const actors = events.filter((e) => e.kind === 'actor').map((e) => e.data as { action: string; token: string });
    expect(actors.map((a) => [a.action, a.token])).toEqual([
      ['submit', 't-submit'],
      ['cancel', 't-admin'],
      ['retry', 't-admin'],
      ['cancel', 'bootstrap'],
    ]);
    // Each actor event follows the engine's own event of that action.
    const kinds = events.map((e) => e.kind).filter((k) => /^(job_submitted|job_cancelled|job_retried|actor)$/.test(k));
    expect(kinds).toEqual([
      'job_submitted',
      'actor',
      'job_cancelled',
      'actor',
      'job_retried',
      'actor',
      'job_cancelled',
      'actor',
    ]);
  });

  it('cm token create / list / revoke: shown once, stored hashed, revoked at once', async () => {
    const env = { DATABASE_URL, CM_SCHEMA: schema, CM_URL: base };
    const created = await sh('./cm token create --role submit --name ci', env);
    expect(created.code).toBe(0);
    const token = created.stdout.trim();
    expect(token).toMatch(/^cm_[A-Za-z0-9_-]{43}$/);
    expect(created.stderr).toContain('created token "ci" (role submit); it is shown only now');
    // Stored as its SHA-256 digest only.
    const { rows } = await app.machine.pool.query(`SELECT * FROM "${schema}".api_tokens WHERE name = 'ci'`);
    expect(rows).toHaveLength(1);
    expect(JSON.stringify(rows[0])).not.toContain(token);
    expect(rows[0].token_sha256).toMatch(/^[0-9a-f]{64}$/);

    // The CLI sends CM_TOKEN: the new token lists jobs; without one the API refuses.
    const [again, badRole, list, listJson, listJobs, anonymous] = await Promise.all([
      sh('./cm token create --role submit --name ci', env),
      sh('./cm token create --role root --name x', env),
      sh('./cm token list', env),
      sh('./cm token list --json', env),
      sh('./cm list --json', { ...env, CM_TOKEN: token }),
      sh('./cm list', env),
    ]);
    expect([again.code, again.stderr.trim()]).toEqual([
      1,
      'cm token create: name: an active token named "ci" exists (revoke it first)',
    ]);
    expect(badRole.code).toBe(2);
    expect(list.stdout).toMatch(new RegExp(`\\bci\\s+submit\\s+${token.slice(0, 10)}…`));
    const listed = JSON.parse(listJson.stdout) as Array<{ name: string; role: string }>;
    expect(listed.map((t) => [t.name, t.role])).toEqual([
      ['t-read', 'read'],
      ['t-submit', 'submit'],
      ['t-admin', 'admin'],
      ['ci', 'submit'],
    ]);

    expect(listJobs.code).toBe(0);
    expect(JSON.parse(listJobs.stdout).items.length).toBeGreaterThan(0);
    expect(anonymous.code).toBe(1);
    const read = await raw(base, 'GET', '/api/v1/jobs', { authorization: `Bearer ${token}` });
    expect(read.status).toBe(200);

    const revoked = await sh('./cm token revoke ci', env);
    expect(revoked.code).toBe(0);
    expect(revoked.stdout).toContain('revoked token "ci" (role submit');
    const after = await raw(base, 'GET', '/api/v1/jobs', { authorization: `Bearer ${token}` });
    expect(after.status).toBe(401);
    const [revokeAgain, listAll] = await Promise.all([
      sh('./cm token revoke ci', env),
      sh('./cm token list --all --json', env),
    ]);
    expect([revokeAgain.code, revokeAgain.stderr.trim()]).toEqual([1, 'cm token revoke: no active token named "ci"']);
    const all = JSON.parse(listAll.stdout) as Array<{ revokedAt: string | null }>;
    expect(all.filter((t) => t.revokedAt).length).toBe(1);
  }, 60_000);

  it('refuses cross-origin writes unless the origin is listed (CORS allow-list)', async () => {
    const corsId = `cors-${schema.replace(/_/g, '-')}`;
    const collection = {
      type: 'Collection',
      id: corsId,
      stac_version: '1.0.0',
      description: 'x',
      license: 'proprietary',
      extent: { spatial: { bbox: [[0, 0, 1, 1]] }, temporal: { interval: [[null, null]] } },
      links: [],
    };
    const admin = { ...auth('admin'), 'content-type': 'application/json' };
    const evil = await raw(
      base,
      'PUT',
      `/stac/collections/${corsId}`,
      { ...admin, origin: 'https://evil.example' },
      JSON.stringify(collection),
    );
    expect(evil.status).toBe(403);
    expect(JSON.parse(evil.body).code).toBe('CrossOriginRefused');
    expect(evil.headers['access-control-allow-origin']).toBeUndefined();
    expect((await raw(base, 'GET', `/stac/collections/${corsId}`, auth('read'))).status).toBe(404);
    // Preflight: refused for a foreign origin, allowed for the listed one.
    const pre = (origin: string) =>
      raw(base, 'OPTIONS', `/stac/collections/${corsId}`, {
        origin,
        'access-control-request-method': 'PUT',
        'access-control-request-headers': 'authorization, content-type',
      });
    const [preEvil, preOk] = await Promise.all([pre('https://evil.example'), pre(ALLOWED_ORIGIN)]);
    expect(preEvil.status).toBe(403);
    expect(preEvil.headers['access-control-allow-origin']).toBeUndefined();
    expect(preOk.status).toBe(204);
    expect(preOk.headers['access-control-allow-origin']).toBe(ALLOWED_ORIGIN);
    expect(preOk.headers['access-control-allow-headers']).toContain('authorization');
    // A cross-origin read is answered, but without the header a browser needs to read it.
    const read = await raw(base, 'GET', '/stac/collections', { ...auth('read'), origin: 'https://evil.example' });
    expect(read.status).toBe(200);
    expect(read.headers['access-control-allow-origin']).toBeUndefined();
    // The listed origin writes (with an admin token) and is told so.
    const ok = await raw(
      base,
      'PUT',
      `/stac/collections/${corsId}`,
      { ...admin, origin: ALLOWED_ORIGIN },
      JSON.stringify(collection),
    );
    expect([ok.status, ok.headers['access-control-allow-origin']]).toEqual([201, ALLOWED_ORIGIN]);
    // Same origin (the dashboard) is never cross-origin.
    const same = await raw(base, 'GET', '/api/v1/jobs', { ...auth('read'), origin: base });
    expect([same.status, same.headers['access-control-allow-origin']]).toEqual([200, base]);
  });

  it('answers 413 past the body limit, before reading (content-length) or while streaming', async () => {
    const big = 'x'.repeat(65 * 1024);
    const json = { ...auth('admin'), 'content-type': 'application/json' };
    const declared = await raw(
      base,
      'POST',
      '/trpc/jobs.submit',
      json,
      JSON.stringify({ type: 'hello_world', params: { message: big } }),
    );
    expect(declared.status).toBe(413);
    expect(JSON.parse(declared.body).code).toBe('PayloadTooLarge');
    const rest = await raw(base, 'POST', '/api/v1/jobs', json, { chunks: 64, size: 4096 });
    expect(rest.status).toBe(413);
    const stac = await raw(base, 'PUT', '/stac/collections/big', json, { chunks: 64, size: 4096 });
    expect(stac.status).toBe(413);
    // 64 MiB streamed at the tRPC endpoint: refused, and the server's memory stays flat.
    global.gc?.();
    const before = process.memoryUsage().rss;
    const trpc = await raw(base, 'POST', '/trpc/jobs.submit', json, { chunks: 1024, size: 64 * 1024 });
    expect(trpc.status).toBe(413);
    const grown = process.memoryUsage().rss - before;
    expect(grown).toBeLessThan(32 * 1024 * 1024);
    // Under the limit all is well.
    const small = await raw(
      base,
      'POST',
      '/api/v1/jobs',
      json,
      JSON.stringify({ type: 'hello_world', params: { n: 1 } }),
    );
    expect(small.status).toBe(201);
  });
});

describe('anonymous on loopback (no token configured)', () => {
  const schema = uniqueSchema('cmanon');
  let app: App;
  beforeAll(async () => {
    app = await createApp({
      env: parseEnv({ CM_API_PORT: '0', CM_SCHEMA: schema, CM_LOG_LEVEL: 'error', CM_ROLE: 'api' }),
    });
  }, 60_000);
  afterAll(async () => {
    await app?.close();
    await dropSchemas(schema);
  });

  it('serves anyone as admin, but only under a loopback host name (DNS rebinding)', async () => {
    const base = app.url!;
    const port = new URL(base).port;
    const [ok, localhost, foreign] = await Promise.all([
      raw(base, 'GET', '/api/v1/jobs'),
      raw(base, 'GET', '/api/v1/jobs', { host: `localhost:${port}` }),
      raw(
        base,
        'POST',
        '/trpc/jobs.submit',
        { host: `evil.example:${port}`, 'content-type': 'application/json' },
        JSON.stringify({ type: 'hello_world' }),
      ),
    ]);
    expect(ok.status).toBe(200);
    expect(localhost.status).toBe(200);
    expect(foreign.status).toBe(421);
    expect(JSON.parse(foreign.body).code).toBe('HostNotAllowed');
    const { rows } = await app.machine.pool.query(`SELECT count(*)::int AS n FROM ${app.machine.t.jobs}`);
    expect(rows[0].n).toBe(0);
  });

  it('refuses to start anonymously on a non-loopback address unless explicitly allowed', async () => {
    const env = {
      CM_API_PORT: '0',
      CM_SCHEMA: schema,
      CM_LOG_LEVEL: 'error',
      CM_ROLE: 'api',
      CM_API_HOST: '0.0.0.0',
    } as const;
    await expect(createApp({ env: parseEnv(env) })).rejects.toMatchObject({
      code: 'CM_ERR_ANONYMOUS_NON_LOOPBACK',
      message: expect.stringContaining('only on a loopback address, not 0.0.0.0'),
    });
    const opened = await createApp({ env: parseEnv({ ...env, CM_ALLOW_ANONYMOUS_NON_LOOPBACK: 'true' }) });
    try {
      const port = (opened.server!.address() as { port: number }).port;
      expect((await raw(`http://127.0.0.1:${port}`, 'GET', '/api/v1/jobs')).status).toBe(200);
    } finally {
      await opened.close();
    }
  }, 60_000);

  it('requires a token within a second of the first one being created', async () => {
    const store = new TokenStore(app.machine.pool, schema);
    const { token } = await store.create({ name: 'first', role: 'read' });
    await new Promise((r) => setTimeout(r, 1100));
    const [anon, withToken] = await Promise.all([
      raw(app.url!, 'GET', '/api/v1/jobs'),
      raw(app.url!, 'GET', '/api/v1/jobs', { authorization: `Bearer ${token}` }),
    ]);
    expect(anon.status).toBe(401);
    expect(withToken.status).toBe(200);
  });
});
