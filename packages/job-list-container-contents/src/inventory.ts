import type { Pool, PoolClient } from 'pg';

/**
 * The inventory: one row per listed blob, keyed by (job_id, ordinal). Stage 1 fills names and
 * listing properties; stage 2 fills the analysed properties. It outlives the job so that it can
 * be queried with SQL (`SELECT * FROM inventory.list_container_inventory WHERE job_id = ...`).
 *
 * It lives in its own schema because job contexts do not name the ledger's schema; rows are
 * keyed by job id, which is a hash of the parameters, so two ledgers (e.g. two test machines)
 * running the very same parameters at the same moment would share rows.
 */
export const INVENTORY_SCHEMA = 'inventory';
export const INVENTORY_TABLE = `${INVENTORY_SCHEMA}.list_container_inventory`;

const DDL = `
CREATE SCHEMA IF NOT EXISTS ${INVENTORY_SCHEMA};
CREATE TABLE IF NOT EXISTS ${INVENTORY_TABLE} (
  job_id          text        NOT NULL,
  ordinal         integer     NOT NULL,
  container_name  text        NOT NULL,
  blob_name       text        NOT NULL,
  listed_size     bigint      NOT NULL,
  listed_at       timestamptz NOT NULL DEFAULT now(),
  size_bytes      bigint,
  extension       text,
  content_type    text,
  last_modified   timestamptz,
  etag            text,
  metadata        jsonb,
  analyzed_at     timestamptz,
  error_code      text,
  error_message   text,
  PRIMARY KEY (job_id, ordinal)
);`;

let ensured = new WeakSet<object>();

/** Creates the schema and table once per pool; concurrent callers serialise on a lock. */
export async function ensureInventory(db: Pool): Promise<void> {
  if (ensured.has(db)) return;
  const client = await db.connect();
  try {
    await client.query('BEGIN');
    // Concurrent CREATE ... IF NOT EXISTS can still collide on the catalog's unique index.
    await client.query(`SELECT pg_advisory_xact_lock(hashtext('coremachine:list_container_inventory'))`);
    await client.query(DDL);
    await client.query('COMMIT');
    ensured.add(db);
  } catch (err) {
    await client.query('ROLLBACK').catch(() => {});
    throw err;
  } finally {
    client.release();
  }
}

/** For tests that drop the schema. */
export function forgetEnsured(): void {
  ensured = new WeakSet();
}

export interface ListedRow {
  name: string;
  size: number;
}

/** Inserts one chunk of listed blobs in a single statement. */
export async function insertListed(
  client: PoolClient,
  jobId: string,
  container: string,
  firstOrdinal: number,
  rows: ListedRow[],
): Promise<void> {
  if (rows.length === 0) return;
  await client.query(
    `INSERT INTO ${INVENTORY_TABLE} (job_id, ordinal, container_name, blob_name, listed_size)
     SELECT $1, $2::int + u.i - 1, $3, u.name, u.size
     FROM unnest($4::text[], $5::bigint[]) WITH ORDINALITY AS u(name, size, i)`,
    [jobId, firstOrdinal, container, rows.map((r) => r.name), rows.map((r) => r.size)],
  );
}

export interface AnalysedRow {
  ordinal: number;
  size: number | null;
  extension: string | null;
  contentType: string | null;
  lastModified: string | null;
  etag: string | null;
  metadata: Record<string, string> | null;
  errorCode: string | null;
  errorMessage: string | null;
}

/** Records a batch's analysis in one statement (idempotent: a re-run overwrites). */
export async function recordAnalysed(db: Pool, jobId: string, rows: AnalysedRow[]): Promise<void> {
  if (rows.length === 0) return;
  await db.query(
    `UPDATE ${INVENTORY_TABLE} AS t SET
       size_bytes = u.size, extension = u.ext, content_type = u.ctype, last_modified = u.lm, etag = u.etag,
       metadata = u.meta, error_code = u.code, error_message = u.msg, analyzed_at = now()
     FROM unnest($2::int[], $3::bigint[], $4::text[], $5::text[], $6::timestamptz[], $7::text[], $8::jsonb[], $9::text[], $10::text[])
       AS u(ordinal, size, ext, ctype, lm, etag, meta, code, msg)
     WHERE t.job_id = $1 AND t.ordinal = u.ordinal`,
    [
      jobId,
      rows.map((r) => r.ordinal),
      rows.map((r) => r.size),
      rows.map((r) => r.extension),
      rows.map((r) => r.contentType),
      rows.map((r) => r.lastModified),
      rows.map((r) => r.etag),
      rows.map((r) => (r.metadata ? JSON.stringify(r.metadata) : null)),
      rows.map((r) => r.errorCode),
      rows.map((r) => r.errorMessage),
    ],
  );
}
