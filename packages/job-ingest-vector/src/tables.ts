import type { Pool, PoolClient } from 'pg';
import { permanentError, quoteIdent, quoteLiteral, withTransaction, type Services } from '@coremachine/core-machine';
import {
  CHUNK_TABLE_PREFIX,
  factsComment,
  FID_COLUMN,
  GEOM_COLUMN,
  parseFactsComment,
  pgGeometryType,
  STAGING_TABLE_PREFIX,
  type ColumnPlan,
  type GeometryPlan,
  type TableFacts,
} from '@coremachine/geo/vector';
import { DEFAULT_VECTOR_SCHEMAS } from './services.ts';

/** A table in a schema, both validated identifiers. */
export interface TableRef {
  schema: string;
  table: string;
}

export const qualified = (t: TableRef) => `${quoteIdent(t.schema)}.${quoteIdent(t.table)}`;

/**
 * The staging table of a job: created by prepare, filled by the load tasks, renamed into place
 * by finalize. Named after the job so a re-run of the same job finds its own table.
 */
export function stagingTable(schema: string, jobId: string): TableRef {
  return { schema, table: `${STAGING_TABLE_PREFIX}${jobId.slice(0, 24)}` };
}

/** The staging table's chunk markers: one row per loaded chunk, with its counts. */
export function markersTable(staging: TableRef): TableRef {
  return { schema: staging.schema, table: `${staging.table}_chunks` };
}

/** Prefix of the per-delivery chunk tables of a job (`cm_chunk_<job>_<index>_<random>`). */
export function chunkTablePrefix(staging: TableRef): string {
  return `${CHUNK_TABLE_PREFIX}${staging.table.slice(STAGING_TABLE_PREFIX.length).slice(0, 16)}_`;
}

/** Drops the job's chunk tables left by deliveries that died, and (unless told not to) its chunk markers. */
export async function dropLoadLeftovers(db: Pool, staging: TableRef, { markers = true } = {}): Promise<void> {
  const { rows } = await db.query<{ t: string }>(
    `select tablename t from pg_tables where schemaname = $1 and starts_with(tablename, $2)`,
    [staging.schema, chunkTablePrefix(staging)],
  );
  for (const r of rows) await db.query(`drop table if exists ${qualified({ schema: staging.schema, table: r.t })}`);
  if (markers) await db.query(`drop table if exists ${qualified(markersTable(staging))}`);
}

/**
 * Drops every table of a job (staging, markers, chunk tables): what a job that fails leaves
 * behind is nothing. Never the target: a swap that committed made the staging table the target.
 */
export async function dropJobTables(db: Pool, staging: TableRef): Promise<void> {
  await dropLoadLeftovers(db, staging).catch(() => {});
  await db.query(`drop table if exists ${qualified(staging)}`).catch(() => {});
}

/** Refuses a schema outside the machine's allow-list. */
export function assertSchemaAllowed(schema: string, services: Services): void {
  const allowed = services.vector?.schemas ?? DEFAULT_VECTOR_SCHEMAS;
  if (!allowed.includes(schema)) {
    throw permanentError(
      'SCHEMA_NOT_ALLOWED',
      `schema ${JSON.stringify(schema)} is not allowed; allowed: ${allowed.join(', ')}`,
      { allowed },
    );
  }
}

export async function tableExists(db: Pool | PoolClient, t: TableRef): Promise<boolean> {
  const { rows } = await db.query<{ oid: string | null }>('select to_regclass($1)::text as oid', [
    `${quoteIdent(t.schema)}.${quoteIdent(t.table)}`,
  ]);
  return rows[0]?.oid != null;
}

export function tableExistsError(t: TableRef) {
  return permanentError(
    'TABLE_EXISTS',
    `Table ${t.schema}.${t.table} already exists; set overwrite: true to replace it`,
    { schema: t.schema, table: t.table },
  );
}

/**
 * Creates the staging table and its chunk markers (dropping leftovers of an earlier attempt of
 * the same job), run once by the prepare task. The staging table gets its primary key in
 * finalize (one sorted build instead of a B-tree insert per row); exactly-once is kept per
 * chunk by the markers. Load tasks only create and drop their own chunk tables.
 */
export async function createStagingTable(
  pool: Pool,
  staging: TableRef,
  columns: readonly ColumnPlan[],
  geometry: GeometryPlan,
): Promise<void> {
  const cols = [
    `${quoteIdent(FID_COLUMN)} bigint not null`,
    ...columns.map((c) => `${quoteIdent(c.name)} ${c.pgType}`),
    `${quoteIdent(GEOM_COLUMN)} ${pgGeometryType(geometry)} not null`,
  ];
  await withTransaction(pool, async (client) => {
    // Two jobs creating the same schema at once would race on the catalog: serialise them.
    await client.query('select pg_advisory_xact_lock(hashtext($1))', [`cm_vector_schema:${staging.schema}`]);
    await client.query(`create schema if not exists ${quoteIdent(staging.schema)}`);
    await client.query(`drop table if exists ${qualified(staging)}`);
    await client.query(`create table ${qualified(staging)} (${cols.join(', ')})`);
    await client.query(`drop table if exists ${qualified(markersTable(staging))}`);
    await client.query(
      `create table ${qualified(markersTable(staging))} (chunk integer primary key, stats jsonb not null)`,
    );
  });
}

/** `<table><suffix>` within 63 bytes (table names are ASCII): the table part is shortened, never the suffix. */
const suffixed = (table: string, suffix: string) => `${table.slice(0, 63 - suffix.length)}${suffix}`;

/**
 * The facts left on the final table (see geo/vector's published tables): its row count and
 * extent for the servers, and the job, so that a re-run finalize knows its swap already happened.
 */
export async function tableFacts(db: Pool, t: TableRef): Promise<TableFacts | null> {
  const { rows } = await db.query<{ c: string | null }>("select obj_description(to_regclass($1), 'pg_class') as c", [
    qualified(t),
  ]);
  return parseFactsComment(rows[0]?.c);
}

/** ANALYZE: it does not conflict with a concurrent read, so finalize runs it beside its own scan. */
export async function analyzeTable(db: Pool, t: TableRef): Promise<void> {
  await db.query(`analyze ${qualified(t)}`);
}

/**
 * The unique index on the row key and the GiST index of the staging table, built at once
 * (CREATE INDEX takes a SHARE lock: two of them, and reads of the table, go side by side). A
 * duplicate key would mean a chunk was loaded twice: the build fails rather than hide it.
 * Idempotent (a re-run finalize finds them built).
 */
export async function buildIndexes(pool: Pool, staging: TableRef): Promise<void> {
  await Promise.all([
    pool.query(
      `create unique index if not exists ${quoteIdent(`${staging.table}_pkey`)} on ${qualified(staging)} (${quoteIdent(FID_COLUMN)})`,
    ),
    pool.query(
      `create index if not exists ${quoteIdent(`${staging.table}_geom_idx`)} on ${qualified(staging)} using gist (${quoteIdent(GEOM_COLUMN)})`,
    ),
  ]);
}

/**
 * The swap, in one transaction, of the indexed and analyzed staging table: its unique index
 * becomes the primary key, and the target is replaced only with `overwrite` (else TABLE_EXISTS).
 * Readers see either the old table or the complete new one.
 */
export async function swapIntoPlace(
  pool: Pool,
  staging: TableRef,
  target: TableRef,
  overwrite: boolean,
  facts: TableFacts,
): Promise<void> {
  const indexName = `${staging.table}_geom_idx`;
  const pkey = `${staging.table}_pkey`;
  await pool.query(`do $$ begin if not exists (select 1 from pg_constraint where conrelid = ${quoteLiteral(qualified(staging))}::regclass and contype = 'p') then
    alter table ${qualified(staging)} add constraint ${quoteIdent(pkey)} primary key using index ${quoteIdent(pkey)}; end if; end $$`);
  await withTransaction(pool, async (client) => {
    await client.query('select pg_advisory_xact_lock(hashtext($1))', [
      `cm_vector_table:${target.schema}.${target.table}`,
    ]);
    if (await tableExists(client, target)) {
      if (!overwrite) throw tableExistsError(target);
      await client.query(`drop table ${qualified(target)}`);
    }
    await client.query(`alter table ${qualified(staging)} rename to ${quoteIdent(target.table)}`);
    await client.query(
      `alter index ${quoteIdent(target.schema)}.${quoteIdent(indexName)} rename to ${quoteIdent(suffixed(target.table, '_geom_idx'))}`,
    );
    await client.query(
      `alter table ${qualified(target)} rename constraint ${quoteIdent(pkey)} to ${quoteIdent(suffixed(target.table, '_pkey'))}`,
    );
    await client.query(`comment on table ${qualified(target)} is ${quoteLiteral(factsComment(facts))}`);
    await client.query(`drop table if exists ${qualified(markersTable(staging))}`);
  });
}
