import pg from 'pg';
import { CoreMachineError } from './errors.ts';

export type Pool = pg.Pool;
export type PoolClient = pg.PoolClient;
export type Queryable = Pick<pg.Pool, 'query'> | pg.PoolClient;

// Return int8 (bigint) and numeric as JS numbers: counts and sizes in this project stay far
// below 2^53, and callers would otherwise get strings.
pg.types.setTypeParser(20, (v) => Number(v));
pg.types.setTypeParser(1700, (v) => Number(v));

/**
 * Gives every new connection of a pool a permanent error listener, attached synchronously as it
 * connects. pg-pool takes its own listener off a client while it is checked out, and hands it out
 * from inside the socket's data handler: when PostgreSQL shuts down right after accepting a
 * connection, its FATAL arrives in the same chunk as ReadyForQuery, before the borrower can listen,
 * and an unheard 'error' ends the process. (Queries on the client still fail with the error, and
 * an idle client still leaves the pool through pg-pool's own listener.)
 */
export const listenOnConnect = {
  onConnect: (client: pg.PoolClient) => {
    client.on('error', () => {});
  },
};

export function createPool(connectionString: string, max = 10): pg.Pool {
  const pool = new pg.Pool({
    connectionString,
    max,
    application_name: 'coremachine',
    ...listenOnConnect,
  } as pg.PoolConfig);
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

/**
 * Errors that mean the connection (or the server) went away, or a conflict that a new attempt
 * resolves: retrying the whole transaction on a fresh connection is safe and may succeed.
 */
export function isTransientDbError(err: unknown): boolean {
  const e = err as { code?: unknown; message?: unknown } | null;
  const code = typeof e?.code === 'string' ? e.code : '';
  if (code.startsWith('08') || code === '57P01' || code === '57P02' || code === '57P03') return true;
  if (code === '40001' || code === '40P01' || code === '53300') return true;
  if (['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EPIPE', 'ENOTCONN', 'EHOSTUNREACH'].includes(code)) return true;
  const message = typeof e?.message === 'string' ? e.message : '';
  return /Connection terminated|connection error|Client was closed|not queryable|timeout exceeded when trying to connect|the database system is (starting up|shutting down|in recovery)/i.test(
    message,
  );
}

/**
 * Runs `fn` in a transaction on one pooled connection; rolls back on any error. The checked-out
 * client has an error listener for its whole lease (a server restart while it is checked out
 * would otherwise crash the process), and a client whose connection failed is destroyed, not
 * returned to the pool.
 */
export async function withTransaction<T>(pool: pg.Pool, fn: (client: pg.PoolClient) => Promise<T>): Promise<T> {
  const client = await pool.connect();
  let broken: Error | undefined;
  const onError = (err: Error) => {
    broken = err;
  };
  client.on('error', onError);
  try {
    await client.query('BEGIN');
    const result = await fn(client);
    await client.query('COMMIT');
    return result;
  } catch (err) {
    if (isTransientDbError(err)) broken ??= err as Error;
    if (!broken) await client.query('ROLLBACK').catch((e: Error) => (broken = e));
    throw err;
  } finally {
    client.removeListener('error', onError);
    if (broken) client.on('error', () => {}); // late errors of a closing connection
    // pg-pool keeps a listener while idle; a broken client is closed instead of reused.
    client.release(broken);
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
