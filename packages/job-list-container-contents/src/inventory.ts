import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { blobExtension, NO_EXTENSION, type BlobInfo } from '@coremachine/storage';
import type { Pool, PoolClient } from 'pg';
import { from as copyFrom } from 'pg-copy-streams';

/**
 * The inventory: one row per listed blob, keyed by (job_id, ordinal). Stage 1 records each blob
 * with the properties its listing returned; stage 2 (`verify_blobs` only) overwrites them with
 * each blob's own properties request. It outlives the job so that it can
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
);
ALTER TABLE ${INVENTORY_TABLE} ADD COLUMN IF NOT EXISTS tags jsonb;`;

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

/** COPY text format: backslash, tab, newline and carriage return escaped; `\N` is NULL. */
function copyText(v: string | null): string {
  if (v === null) return '\\N';
  return v.replace(/[\\\t\n\r]/g, (c) => (c === '\\' ? '\\\\' : c === '\t' ? '\\t' : c === '\n' ? '\\n' : '\\r'));
}

const COPY_COLUMNS =
  'job_id, ordinal, container_name, blob_name, listed_size, size_bytes, extension, content_type, last_modified, etag, metadata, tags, analyzed_at';

/**
 * Records listed blobs with the properties their listing returned, through one COPY fed page
 * by page as the pages arrive (backpressure included): `pages` yields the blobs to record, in
 * order, ordinals from 0. Returns the number of rows written. Run it inside the caller's
 * transaction so that a retry replaces the rows whole.
 */
export async function copyListed(
  client: PoolClient,
  jobId: string,
  container: string,
  pages: AsyncIterable<BlobInfo[]>,
): Promise<number> {
  let ordinal = 0;
  const job = copyText(jobId);
  const cont = copyText(container);
  async function* lines(): AsyncGenerator<string> {
    for await (const page of pages) {
      const now = copyText(new Date().toISOString());
      let chunk = '';
      for (const b of page) {
        const size = String(b.size);
        chunk +=
          [
            job,
            String(ordinal++),
            cont,
            copyText(b.name),
            size,
            size,
            copyText(blobExtension(b.name) || NO_EXTENSION),
            copyText(b.contentType),
            copyText(b.lastModified.toISOString()),
            copyText(b.etag),
            copyText(b.metadata ? JSON.stringify(b.metadata) : null),
            copyText(b.tags ? JSON.stringify(b.tags) : null),
            now,
          ].join('\t') + '\n';
      }
      if (chunk) yield chunk;
    }
  }
  await pipeline(
    Readable.from(lines()),
    client.query(copyFrom(`COPY ${INVENTORY_TABLE} (${COPY_COLUMNS}) FROM STDIN`)),
  );
  return ordinal;
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
