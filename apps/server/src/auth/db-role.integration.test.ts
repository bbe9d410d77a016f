/**
 * The application runs as the dedicated `coremachine` role that scripts/bootstrap.sh creates
 * (no superuser, password authentication): it migrates, serves and runs a job in schemas it
 * owns, and cannot do what only a superuser can.
 */
import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { DATABASE_URL, dropSchemas } from '@coremachine/test-kit';
import { afterAll, describe, expect, it } from 'vitest';
import { createApp, type App } from '../app.ts';
import { parseEnv } from '../env.ts';

const APP_URL =
  process.env['CM_TEST_APP_DATABASE_URL'] ?? 'postgres://coremachine:coremachine@127.0.0.1:5432/coremachine';

async function query<T>(url: string, sql: string): Promise<T[]> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    return (await client.query(sql)).rows as T[];
  } finally {
    await client.end();
  }
}

describe('the application database role', () => {
  const tag = randomBytes(4).toString('hex');
  const schemas = { ledger: `cmrole_${tag}`, stac: `cmrole_stac_${tag}`, geo: `cmrole_geo_${tag}` };
  let app: App | undefined;
  afterAll(async () => {
    await app?.close();
    for (const s of Object.values(schemas)) await dropSchemas(s, DATABASE_URL);
  });

  it('is not a superuser and signs in with its password, not by trust', async () => {
    const [role] = await query<{ rolsuper: boolean; rolcreaterole: boolean; rolcreatedb: boolean }>(
      DATABASE_URL,
      `SELECT rolsuper, rolcreaterole, rolcreatedb FROM pg_roles WHERE rolname = 'coremachine'`,
    );
    expect(role, 'the coremachine role exists (scripts/bootstrap.sh creates it)').toEqual({
      rolsuper: false,
      rolcreaterole: false,
      rolcreatedb: false,
    });
    const wrong = new URL(APP_URL);
    wrong.password = 'not-the-password';
    await expect(query(wrong.href, 'SELECT 1')).rejects.toMatchObject({ code: '28P01' });
  });

  it('migrates, serves and runs a job as coremachine, in schemas it owns', async () => {
    app = await createApp({
      env: parseEnv({
        DATABASE_URL: APP_URL,
        CM_API_PORT: '0',
        CM_SCHEMA: schemas.ledger,
        CM_STAC_SCHEMA: schemas.stac,
        CM_GEO_SCHEMAS: schemas.geo,
        CM_LOG_LEVEL: 'error',
      }),
    });
    const { rows } = await app.machine.pool.query<{ user: string; super: string }>(
      `SELECT current_user AS user, current_setting('is_superuser') AS super`,
    );
    expect(rows[0]).toEqual({ user: 'coremachine', super: 'off' });
    const res = await fetch(`${app.url}/api/v1/jobs`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ type: 'hello_world', params: { n: 2 } }),
    });
    expect(res.status).toBe(201);
    const { jobId } = (await res.json()) as { jobId: string };
    for (let i = 0; i < 300; i++) {
      const job = await app.machine.requireJob(jobId);
      if (job.status !== 'queued' && job.status !== 'processing') break;
      await new Promise((r) => setTimeout(r, 100));
    }
    expect((await app.machine.requireJob(jobId)).status).toBe('completed');
    const owners = await query<{ nspname: string; owner: string }>(
      DATABASE_URL,
      `SELECT nspname, pg_get_userbyid(nspowner) AS owner FROM pg_namespace WHERE nspname LIKE '%${tag}%' ORDER BY 1`,
    );
    expect(owners.map((o) => o.owner)).toEqual(owners.map(() => 'coremachine'));
    expect(owners.map((o) => o.nspname)).toEqual(expect.arrayContaining(Object.values(schemas)));
    // What only a superuser may do is refused.
    await expect(app.machine.pool.query(`CREATE ROLE cm_should_not_exist_${tag}`)).rejects.toMatchObject({
      code: '42501',
    });
    await expect(app.machine.pool.query(`SELECT * FROM pg_authid`)).rejects.toMatchObject({ code: '42501' });
  }, 60_000);
});
