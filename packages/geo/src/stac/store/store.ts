import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Pool } from 'pg';
import { migrate, quoteIdent, type Migration } from '@coremachine/core-machine';
import { DEFAULT_COLLECTIONS } from '../collections.ts';
import { StacError } from '../errors.ts';
import { COLLECTION_ID_PATTERN } from '../ids.ts';
import type { StacCollection, StacItem } from '../types.ts';
import { withStacLinks } from '../services.ts';
import { formatIssues, validateCollection, validateItem } from '../validate.ts';

export const DEFAULT_STAC_SCHEMA = 'stac';
const MIGRATIONS_DIR = join(import.meta.dirname, 'migrations');

function storeMigrations(): Migration[] {
  return readdirSync(MIGRATIONS_DIR)
    .filter((f) => /^\d+_.+\.sql$/.test(f))
    .map((f) => ({ version: Number(f.split('_')[0]), name: f, sql: readFileSync(join(MIGRATIONS_DIR, f), 'utf8') }))
    .sort((a, b) => a.version - b.version);
}

/**
 * Creates or upgrades the STAC store in `schema` (versioned migrations under an advisory lock)
 * and inserts the default collections (dev, cogs, vectors, geoparquet) that are missing.
 * Safe to call from any number of processes at once.
 * @example await ensureStacStore(pool, 'stac');
 */
export async function ensureStacStore(pool: Pool, schema: string = DEFAULT_STAC_SCHEMA): Promise<void> {
  await migrate(pool, schema, storeMigrations());
  const t = quoteIdent(schema);
  await pool.query(
    `INSERT INTO ${t}.collections (id, content) SELECT c->>'id', c FROM jsonb_array_elements($1::jsonb) c ON CONFLICT (id) DO NOTHING`,
    [JSON.stringify(DEFAULT_COLLECTIONS)],
  );
}

export interface UpsertResult {
  id: string;
  collection: string;
  inserted: boolean;
}

/**
 * Validates and writes a collection (insert or replace).
 * @throws StacError STAC_INVALID with the schema issues.
 */
export async function upsertCollection(
  pool: Pool,
  schema: string,
  collection: StacCollection,
): Promise<{ inserted: boolean }> {
  if (typeof collection?.id !== 'string' || !COLLECTION_ID_PATTERN.test(collection.id)) {
    throw new StacError(
      'STAC_INVALID',
      `Collection id ${JSON.stringify(collection?.id)} is invalid: use 1-64 characters of [A-Za-z0-9._-], starting with a letter or digit`,
    );
  }
  const issues = validateCollection(collection);
  if (issues.length)
    throw new StacError(
      'STAC_INVALID',
      `Collection ${collection.id} is not valid STAC 1.0.0: ${formatIssues(issues)}`,
      issues,
    );
  const { rows } = await pool.query<{ inserted: boolean }>(
    `INSERT INTO ${quoteIdent(schema)}.collections (id, content) VALUES ($1, $2)
     ON CONFLICT (id) DO UPDATE SET content = EXCLUDED.content, updated_at = now()
     RETURNING (xmax = 0) AS inserted`,
    [collection.id, JSON.stringify({ ...collection, links: [] })],
  );
  // A replaced collection keeps the extent and summaries of the items it already holds.
  if (!rows[0]!.inserted) await refreshCollectionExtent(pool, schema, collection.id);
  return { inserted: rows[0]!.inserted };
}

export async function getCollection(pool: Pool, schema: string, id: string): Promise<StacCollection | null> {
  const { rows } = await pool.query<{ content: StacCollection }>(
    `SELECT content FROM ${quoteIdent(schema)}.collections WHERE id = $1`,
    [id],
  );
  return rows[0]?.content ?? null;
}

export async function listCollections(pool: Pool, schema: string): Promise<StacCollection[]> {
  const { rows } = await pool.query<{ content: StacCollection }>(
    `SELECT content FROM ${quoteIdent(schema)}.collections ORDER BY id`,
  );
  return rows.map((r) => r.content);
}

/** Throws STAC_COLLECTION_NOT_FOUND unless the collection exists. */
export async function assertCollectionExists(pool: Pool, schema: string, id: string): Promise<void> {
  const { rowCount } = await pool.query(`SELECT 1 FROM ${quoteIdent(schema)}.collections WHERE id = $1`, [id]);
  if (!rowCount) {
    const known = (await listCollections(pool, schema)).map((c) => c.id).join(', ');
    throw new StacError(
      'STAC_COLLECTION_NOT_FOUND',
      `STAC collection ${JSON.stringify(id)} does not exist in schema ${schema} (known: ${known}); create it with POST /stac/collections`,
    );
  }
}

/**
 * Checks items, in the form the API serves them (with their collection link: STAC 1.0.0 allows
 * `collection` only next to such a link), against STAC 1.0.0 + their extensions.
 * @throws StacError STAC_INVALID naming the item and the issues.
 */
export function assertValidItems(items: StacItem[]): void {
  for (const item of items) {
    const issues = validateItem(withStacLinks(item, 'http://validation.invalid/stac'));
    if (issues.length)
      throw new StacError('STAC_INVALID', `Item ${item.id} is not valid STAC 1.0.0: ${formatIssues(issues)}`, issues);
  }
}

export interface UpsertOptions {
  /**
   * Every item went through `assertValidItems` just before and was not changed since (a
   * catalogue task validates each raster's item on its own, to fail only the invalid ones):
   * they are not validated a second time.
   */
  validated?: boolean;
}

/**
 * Validates, then inserts or updates items in one statement; reports per item whether it was
 * new. Keyed by (collection, id): running a catalogue job twice updates, never duplicates.
 * @throws StacError STAC_INVALID (nothing written) or STAC_COLLECTION_NOT_FOUND.
 */
export async function upsertItems(
  pool: Pool,
  schema: string,
  items: StacItem[],
  options: UpsertOptions = {},
): Promise<UpsertResult[]> {
  if (items.length === 0) return [];
  if (!options.validated) assertValidItems(items);
  for (const c of new Set(items.map((i) => i.collection))) await assertCollectionExists(pool, schema, c);
  const t = quoteIdent(schema);
  // The item's own links are dropped: the API derives self/parent/collection/root per request.
  // One statement cannot touch a row twice: the last copy of a repeated (collection, id) wins.
  const unique = new Map(items.map((i) => [`${i.collection}\u0000${i.id}`, { ...i, links: [] }]));
  const payload = [...unique.values()];
  const { rows } = await pool.query<UpsertResult>(
    `INSERT INTO ${t}.items (collection, id, geometry, start_datetime, end_datetime, content)
     SELECT i->>'collection', i->>'id',
            CASE WHEN i->'geometry' IS NULL OR jsonb_typeof(i->'geometry') = 'null' THEN NULL
                 ELSE ST_SetSRID(ST_GeomFromGeoJSON(i->>'geometry'), 4326) END,
            COALESCE(i#>>'{properties,datetime}', i#>>'{properties,start_datetime}')::timestamptz,
            COALESCE(i#>>'{properties,datetime}', i#>>'{properties,end_datetime}')::timestamptz,
            i
       FROM jsonb_array_elements($1::jsonb) i
     ON CONFLICT (collection, id) DO UPDATE SET
       geometry = EXCLUDED.geometry, start_datetime = EXCLUDED.start_datetime,
       end_datetime = EXCLUDED.end_datetime, content = EXCLUDED.content, updated_at = now()
     RETURNING id, collection, (xmax = 0) AS inserted`,
    [JSON.stringify(payload)],
  );
  for (const c of new Set(payload.map((i) => i.collection))) await refreshCollectionExtent(pool, schema, c);
  return rows;
}

/**
 * Recomputes a collection's extent and summaries from its items: spatial extent the union of
 * the item geometries, temporal extent from the earliest start to the latest end, summaries
 * `proj:code` (distinct codes) and `raster:bands` (distinct band data types, one object each).
 * Other summaries and fields of the collection are kept; a collection without items keeps the
 * extent it has. Called by {@link upsertItems} for every collection it writes to.
 *
 * The collection row is locked first, and the aggregate read after: two writers refresh one
 * after the other, the last one seeing the items of both.
 */
export async function refreshCollectionExtent(pool: Pool, schema: string, id: string): Promise<void> {
  const t = quoteIdent(schema);
  const client = await pool.connect();
  try {
    await client.query('BEGIN');
    const current = await client.query<{ content: StacCollection }>(
      `SELECT content FROM ${t}.collections WHERE id = $1 FOR UPDATE`,
      [id],
    );
    const collection = current.rows[0]?.content;
    if (!collection) {
      await client.query('ROLLBACK');
      return;
    }
    const { rows } = await client.query<{
      n: number;
      xmin: number | null;
      ymin: number | null;
      xmax: number | null;
      ymax: number | null;
      start: Date | null;
      end: Date | null;
      codes: string[] | null;
      data_types: string[] | null;
    }>(
      `WITH e AS (
         SELECT count(*)::int AS n, ST_Extent(geometry) AS box, min(start_datetime) AS start, max(end_datetime) AS "end"
           FROM ${t}.items WHERE collection = $1)
       SELECT n, ST_XMin(box) AS xmin, ST_YMin(box) AS ymin, ST_XMax(box) AS xmax, ST_YMax(box) AS ymax, start, "end",
              (SELECT array_agg(DISTINCT content #>> '{properties,proj:code}' ORDER BY content #>> '{properties,proj:code}')
                 FROM ${t}.items WHERE collection = $1 AND content #>> '{properties,proj:code}' IS NOT NULL) AS codes,
              (SELECT array_agg(DISTINCT d ORDER BY d) FROM ${t}.items,
                      jsonb_path_query(content, '$.assets.*."raster:bands"[*].data_type') AS j, LATERAL (SELECT j #>> '{}' AS d) x
                WHERE collection = $1) AS data_types
         FROM e`,
      [id],
    );
    const r = rows[0]!;
    if (r.n === 0) {
      await client.query('ROLLBACK');
      return;
    }
    const round = (v: number) => Math.round(v * 1e9) / 1e9;
    const extent: StacCollection['extent'] = {
      spatial:
        r.xmin === null
          ? collection.extent.spatial
          : { bbox: [[round(r.xmin), round(r.ymin!), round(r.xmax!), round(r.ymax!)]] },
      temporal: { interval: [[r.start?.toISOString() ?? null, r.end?.toISOString() ?? null]] },
    };
    const summaries: Record<string, unknown> = { ...collection.summaries };
    if (r.codes?.length) summaries['proj:code'] = r.codes;
    else delete summaries['proj:code'];
    if (r.data_types?.length) summaries['raster:bands'] = r.data_types.map((data_type) => ({ data_type }));
    else delete summaries['raster:bands'];
    const next: StacCollection = { ...collection, extent };
    if (Object.keys(summaries).length) next.summaries = summaries;
    else delete next.summaries;
    await client.query(`UPDATE ${t}.collections SET content = $2, updated_at = now() WHERE id = $1`, [
      id,
      JSON.stringify(next),
    ]);
    await client.query('COMMIT');
  } catch (err) {
    await client.query('ROLLBACK').catch(() => undefined);
    throw err;
  } finally {
    client.release();
  }
}

/** Upserts one item; see `upsertItems`. */
export async function upsertItem(pool: Pool, schema: string, item: StacItem): Promise<UpsertResult> {
  return (await upsertItems(pool, schema, [item]))[0]!;
}

export async function getItem(pool: Pool, schema: string, collection: string, id: string): Promise<StacItem | null> {
  const { rows } = await pool.query<{ content: StacItem }>(
    `SELECT content FROM ${quoteIdent(schema)}.items WHERE collection = $1 AND id = $2`,
    [collection, id],
  );
  return rows[0]?.content ?? null;
}
