import { readdir, readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import type pg from 'pg';
import { CoreMachineError } from './errors.ts';
import { quoteIdent, withTransaction } from './db.ts';

const MIGRATIONS_DIR = fileURLToPath(new URL('./migrations/', import.meta.url));

export interface Migration {
  version: number;
  name: string;
  sql: string;
}

/** Migrations from this package plus any extra ones (e.g. the STAC store), ordered by version. */
export async function loadMigrations(extraDirs: string[] = []): Promise<Migration[]> {
  const all: Migration[] = [];
  for (const dir of [MIGRATIONS_DIR, ...extraDirs]) {
    for (const file of (await readdir(dir)).filter((f) => /^\d+_.+\.sql$/.test(f))) {
      all.push({ version: Number(file.split('_')[0]), name: file, sql: await readFile(dir + '/' + file, 'utf8') });
    }
  }
  all.sort((a, b) => a.version - b.version);
  for (let i = 1; i < all.length; i++) {
    if (all[i]!.version === all[i - 1]!.version) {
      throw new CoreMachineError(
        'CM_ERR_MIGRATION_FAILED',
        `Two migrations share version ${all[i]!.version}: ${all[i - 1]!.name} and ${all[i]!.name}`,
      );
    }
  }
  return all;
}

/**
 * Applies pending migrations to `schema`, once, under a transaction-scoped advisory lock: any
 * number of processes may start at once; the first applies, the others wait and find nothing
 * left to do. `{{schema}}` in the SQL is replaced with the quoted schema name.
 */
export async function migrate(pool: pg.Pool, schema: string, migrations: Migration[]): Promise<number[]> {
  const q = quoteIdent(schema);
  return withTransaction(pool, async (client) => {
    await client.query('SELECT pg_advisory_xact_lock(hashtext($1))', [`coremachine:migrate:${schema}`]);
    await client.query(`CREATE SCHEMA IF NOT EXISTS ${q}`);
    await client.query(
      `CREATE TABLE IF NOT EXISTS ${q}.schema_migrations (version int PRIMARY KEY, name text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())`,
    );
    const { rows } = await client.query<{ version: number }>(`SELECT version FROM ${q}.schema_migrations`);
    const done = new Set(rows.map((r) => r.version));
    const applied: number[] = [];
    for (const m of migrations) {
      if (done.has(m.version)) continue;
      try {
        await client.query(m.sql.replaceAll('{{schema}}', q));
      } catch (err) {
        throw new CoreMachineError('CM_ERR_MIGRATION_FAILED', `Migration ${m.name} failed: ${(err as Error).message}`, {
          cause: err,
        });
      }
      await client.query(`INSERT INTO ${q}.schema_migrations (version, name) VALUES ($1, $2)`, [m.version, m.name]);
      applied.push(m.version);
    }
    return applied;
  });
}
