import { randomBytes } from 'node:crypto';
import { afterAll, describe, expect, it } from 'vitest';
import { createPool } from './db.ts';
import { loadMigrations, migrate } from './migrate.ts';

const url = process.env['DATABASE_URL'] ?? 'postgres://postgres@127.0.0.1:5432/coremachine';
const pool = createPool(url, 12);
const schema = `cmmig_${randomBytes(4).toString('hex')}`;

afterAll(async () => {
  await pool.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
  await pool.end();
});

describe('migrations', () => {
  it('eight processes migrating at once apply each version exactly once', async () => {
    const migrations = await loadMigrations();
    expect(migrations.map((m) => m.version)).toEqual([1, 2, 3, 4, 10]);
    const applied = await Promise.all(Array.from({ length: 8 }, () => migrate(pool, schema, migrations)));
    expect(applied.filter((a) => a.length === 5)).toHaveLength(1);
    expect(applied.filter((a) => a.length === 0)).toHaveLength(7);
    const { rows } = await pool.query(`SELECT version FROM "${schema}".schema_migrations ORDER BY version`);
    expect(rows).toEqual([{ version: 1 }, { version: 2 }, { version: 3 }, { version: 4 }, { version: 10 }]);
    const tables = await pool.query(
      `SELECT table_name FROM information_schema.tables WHERE table_schema = $1 ORDER BY 1`,
      [schema],
    );
    expect(tables.rows.map((r) => r.table_name)).toEqual([
      'job_events',
      'job_runs',
      'jobs',
      'schema_migrations',
      'stages',
      'tasks',
      'workers',
    ]);
  });

  it('rejects a schema name that is not a plain identifier', async () => {
    await expect(migrate(pool, 'bad"; DROP TABLE x; --', [])).rejects.toThrow(/Invalid SQL identifier/);
  });
});
