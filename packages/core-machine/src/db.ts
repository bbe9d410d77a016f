import pg from 'pg';
import { CoreMachineError } from './errors.ts';

export type Pool = pg.Pool;
export type PoolClient = pg.PoolClient;
export type Queryable = Pick<pg.Pool, 'query'> | pg.PoolClient;

// Return int8 (bigint) and numeric as JS numbers: counts and sizes in this project stay far
// below 2^53, and callers would otherwise get strings.
pg.types.setTypeParser(20, (v) => Number(v));
pg.types.setTypeParser(1700, (v) => Number(v));

export function createPool(connectionString: string, max = 10): pg.Pool {
  const pool = new pg.Pool({ connectionString, max, application_name: 'coremachine' });
  // An idle client that errors (server restart) must not crash the process.
  pool.on('error', () => {});
  return pool;
}

/** Quotes an SQL identifier (schema, table, column) after checking it is a plain name. */
export function quoteIdent(name: string): string {
  if (!/^[A-Za-z_][A-Za-z0-9_$]*$/.test(name) || Buffer.byteLength(name) > 63) {
    throw new CoreMachineError(
      'CM_ERR_INVALID_PARAMETERS',
      `Invalid SQL identifier ${JSON.stringify(name)}: use letters, digits and _ (max 63 bytes), starting with a letter or _`,
    );
  }
  return `"${name}"`;
}

/**
 * A SQL string literal, for the few statements that cannot take parameters (DDL, COMMENT, SQL
 * sent through GDAL): single quotes doubled (standard_conforming_strings is on by default).
 */
export function quoteLiteral(s: string): string {
  return `'${s.replace(/'/g, "''")}'`;
}

/** Runs `fn` in a transaction on one pooled connection; rolls back on any error. */
export async function withTransaction<T>(pool: pg.Pool, fn: (client: pg.PoolClient) => Promise<T>): Promise<T> {
  const client = await pool.connect();
  try {
    await client.query('BEGIN');
    const result = await fn(client);
    await client.query('COMMIT');
    return result;
  } catch (err) {
    await client.query('ROLLBACK').catch(() => {});
    throw err;
  } finally {
    client.release();
  }
}

/** Adapts a pg client so pg-boss statements run inside the caller's transaction. */
/** What pg-boss needs to run its statements on a connection of ours. */
export interface BossDb {
  executeSql(text: string, values?: unknown[]): Promise<{ rows: any[] }>;
}

export function bossDb(client: Queryable): BossDb {
  return { executeSql: (text: string, values?: unknown[]) => client.query(text, values as unknown[]) };
}

/** Fails fast, with an actionable message, when PostgreSQL cannot be reached. */
export async function preflight(pool: pg.Pool, connectionString: string): Promise<void> {
  try {
    await pool.query('select 1');
  } catch (err) {
    const safe = connectionString.replace(/\/\/([^:@/]+):[^@/]*@/, '//$1:***@');
    throw new CoreMachineError(
      'CM_ERR_DATABASE_UNREACHABLE',
      `Cannot reach PostgreSQL at ${safe}: ${(err as Error).message}. Start it (make start does) or set DATABASE_URL.`,
      { cause: err },
    );
  }
}
