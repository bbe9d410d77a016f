/**
 * API tokens: random, shown once, stored as their SHA-256 digest in `<CM_SCHEMA>.api_tokens`.
 * Roles nest: `read` (jobs get/list/events, catalogue) < `submit` (+ submit) < `admin` (+ cancel,
 * retry, STAC collection writes, tokens). Only `pg` is imported so `cm token` starts fast.
 */
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import type { Pool, PoolClient } from 'pg';

export const ROLES = ['read', 'submit', 'admin'] as const;
export type Role = (typeof ROLES)[number];

/** Who makes a request: a token's name and role, or `anonymous` (loopback without tokens). */
export interface Principal {
  name: string;
  role: Role;
  /** `token` (from the database), `config` (CM_API_TOKEN) or `anonymous`. */
  source: 'token' | 'config' | 'anonymous';
}

export const ANONYMOUS: Principal = { name: 'anonymous', role: 'admin', source: 'anonymous' };
/** The name recorded for the bootstrap admin token from CM_API_TOKEN. */
export const CONFIG_TOKEN_NAME = 'bootstrap';

export function roleAllows(have: Role, need: Role): boolean {
  return ROLES.indexOf(have) >= ROLES.indexOf(need);
}

export interface TokenRow {
  id: number;
  name: string;
  role: Role;
  /** The first characters of the token, enough to recognise it in a list. */
  prefix: string;
  createdAt: string;
  lastUsedAt: string | null;
  revokedAt: string | null;
}

const NAME = /^[A-Za-z0-9][A-Za-z0-9_.@-]{0,63}$/;
const SCHEMA = /^[a-z_][a-z0-9_]*$/;

export const hashToken = (token: string): string => createHash('sha256').update(token, 'utf8').digest('hex');

/** `cm_` and 43 base64url characters (256 random bits). */
export function newToken(): string {
  return `cm_${randomBytes(32).toString('base64url')}`;
}

/** Equal digests, compared in constant time. */
export function sameToken(a: string, b: string): boolean {
  const x = Buffer.from(hashToken(a), 'hex');
  const y = Buffer.from(hashToken(b), 'hex');
  return timingSafeEqual(x, y);
}

export class TokenStore {
  readonly pool: Pool;
  readonly schema: string;
  readonly table: string;
  constructor(pool: Pool, schema: string) {
    if (!SCHEMA.test(schema)) throw new Error(`invalid schema name ${JSON.stringify(schema)}`);
    this.pool = pool;
    this.schema = schema;
    this.table = `"${schema}".api_tokens`;
  }

  /** Creates the table if missing; idempotent, serialised by an advisory lock across processes. */
  async ensure(): Promise<void> {
    await this.tx(async (client) => {
      await client.query(`SELECT pg_advisory_xact_lock(hashtext($1))`, [`${this.schema}.api_tokens`]);
      await client.query(`CREATE SCHEMA IF NOT EXISTS "${this.schema}"`);
      await client.query(
        `CREATE TABLE IF NOT EXISTS ${this.table} (
           id bigserial PRIMARY KEY,
           name text NOT NULL,
           role text NOT NULL CHECK (role IN ('read', 'submit', 'admin')),
           token_sha256 text NOT NULL UNIQUE,
           prefix text NOT NULL,
           created_at timestamptz NOT NULL DEFAULT now(),
           last_used_at timestamptz,
           revoked_at timestamptz
         )`,
      );
      await client.query(
        `CREATE UNIQUE INDEX IF NOT EXISTS api_tokens_active_name ON ${this.table} (name) WHERE revoked_at IS NULL`,
      );
    });
  }

  private async tx<T>(fn: (client: PoolClient) => Promise<T>): Promise<T> {
    const client = await this.pool.connect();
    try {
      await client.query('BEGIN');
      const out = await fn(client);
      await client.query('COMMIT');
      return out;
    } catch (err) {
      await client.query('ROLLBACK').catch(() => undefined);
      throw err;
    } finally {
      client.release();
    }
  }

  /** A new token; its text is returned only here. Names are unique among active tokens. */
  async create(input: { name: string; role: Role }): Promise<{ token: string } & TokenRow> {
    if (!NAME.test(input.name))
      throw new TokenError('name: 1 to 64 letters, digits, or _ . @ - (starting with a letter or digit)');
    if (!ROLES.includes(input.role)) throw new TokenError(`role: one of ${ROLES.join(', ')}`);
    const token = newToken();
    try {
      const { rows } = await this.pool.query(
        `INSERT INTO ${this.table} (name, role, token_sha256, prefix) VALUES ($1, $2, $3, $4) RETURNING *`,
        [input.name, input.role, hashToken(token), token.slice(0, 10)],
      );
      return { token, ...toRow(rows[0]) };
    } catch (err) {
      if ((err as { code?: string }).code === '23505')
        throw new TokenError(`name: an active token named "${input.name}" exists (revoke it first)`);
      throw err;
    }
  }

  async list(options: { includeRevoked?: boolean } = {}): Promise<TokenRow[]> {
    const { rows } = await this.pool.query(
      `SELECT * FROM ${this.table} ${options.includeRevoked ? '' : 'WHERE revoked_at IS NULL'} ORDER BY id`,
    );
    return rows.map(toRow);
  }

  /** Revokes the active token with this name (or numeric id); false when there is none. */
  async revoke(nameOrId: string): Promise<TokenRow | null> {
    const byId = /^\d+$/.test(nameOrId);
    const { rows } = await this.pool.query(
      `UPDATE ${this.table} SET revoked_at = now() WHERE ${byId ? 'id = $1::bigint' : 'name = $1'} AND revoked_at IS NULL RETURNING *`,
      [nameOrId],
    );
    return rows[0] ? toRow(rows[0]) : null;
  }

  async activeCount(): Promise<number> {
    const { rows } = await this.pool.query<{ n: number }>(
      `SELECT count(*)::int AS n FROM ${this.table} WHERE revoked_at IS NULL`,
    );
    return rows[0]?.n ?? 0;
  }

  /** The active token with this text, or null. Notes its use (written at most once a minute). */
  async verify(token: string): Promise<Principal | null> {
    const digest = hashToken(token);
    const { rows } = await this.pool.query(
      `SELECT name, role, last_used_at < now() - interval '1 minute' OR last_used_at IS NULL AS stale
         FROM ${this.table} WHERE token_sha256 = $1 AND revoked_at IS NULL`,
      [digest],
    );
    const row = rows[0] as { name: string; role: Role; stale: boolean } | undefined;
    if (!row) return null;
    if (row.stale)
      void this.pool
        .query(`UPDATE ${this.table} SET last_used_at = now() WHERE token_sha256 = $1`, [digest])
        .catch(() => undefined);
    return { name: row.name, role: row.role, source: 'token' };
  }
}

/** A refused token operation, phrased for the user (names the field). */
export class TokenError extends Error {}

function toRow(r: Record<string, unknown>): TokenRow {
  const iso = (v: unknown) => (v ? new Date(v as string).toISOString() : null);
  return {
    id: Number(r['id']),
    name: r['name'] as string,
    role: r['role'] as Role,
    prefix: r['prefix'] as string,
    createdAt: iso(r['created_at'])!,
    lastUsedAt: iso(r['last_used_at']),
    revokedAt: iso(r['revoked_at']),
  };
}
