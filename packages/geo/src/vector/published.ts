import type { Pool } from 'pg';

/**
 * What a published vector table is, for whoever serves them (OGC API Features, tiles, exports):
 * a table of an allowed schema with a geometry column and a one-column primary key, that is not
 * one of the loaders' working tables (staging, chunk and marker tables, prefixed `cm_`). A table
 * loaded by ingest_vector carries its facts in its comment (row count and extent at load, the
 * job that loaded it), so that serving it needs no scan.
 */

/** Prefixes of the loaders' working tables: never published. */
export const STAGING_TABLE_PREFIX = 'cm_stage_';
export const CHUNK_TABLE_PREFIX = 'cm_chunk_';
const INTERNAL = [STAGING_TABLE_PREFIX, CHUNK_TABLE_PREFIX];

/** True for a working table of a loader (never served). */
export const isWorkingTable = (name: string) => INTERNAL.some((p) => name.startsWith(p));

/** Facts about a loaded table, kept in its comment. */
export interface TableFacts {
  /** The job that loaded it. */
  job: string;
  /** Rows at load. */
  rows: number;
  /** Extent in EPSG:4326 at load; null when empty. */
  bbox: [number, number, number, number] | null;
  /** When it was loaded (ISO 8601). */
  loaded_at: string;
}

const MARKER = 'coremachine.table';

/** The table comment holding the facts (JSON; readable by people too). */
export function factsComment(facts: TableFacts): string {
  return JSON.stringify({ [MARKER]: facts });
}

/** The facts of a table comment; null when the comment is not one (another tool's table). */
export function parseFactsComment(comment: string | null | undefined): TableFacts | null {
  if (!comment || !comment.startsWith('{')) return null;
  try {
    const doc = JSON.parse(comment) as Record<string, unknown>;
    const f = doc[MARKER] as TableFacts | undefined;
    return f && typeof f.rows === 'number' && typeof f.job === 'string' ? f : null;
  } catch {
    return null;
  }
}

/** A published table: where it is, its key and geometry column, and its facts when it has them. */
export interface PublishedTable {
  schema: string;
  table: string;
  /** The primary key column and its SQL type (`bigint`, `text` ...). */
  key: string;
  keyType: string;
  geometry: string;
  /** SRID of the geometry column (0 when unconstrained). */
  srid: number;
  /** PostGIS subtype of the geometry column (`MULTIPOLYGON`, `POINT` ...) and its dimensions. */
  geometryType: string;
  dimensions: number;
  facts: TableFacts | null;
  /** The planner's row estimate (pg_class.reltuples; -1 when never analyzed). */
  estimatedRows: number;
  /**
   * The table's version (see tableVersionSql): another value once the table was replaced
   * (ingest_vector's swap), altered or renamed, or its facts rewritten. Empty when unknown.
   */
  version: string;
}

/**
 * SQL of a table's version, `rel` an SQL expression of its regclass (or oid): a hash of its oid,
 * its catalog row's transaction (any ALTER, RENAME) and its comment (the facts). Cheap (two
 * catalog index lookups), so that a server caching what a table is can check that cache in the
 * statement that reads the table (`where <version> = '<cached>'` returns no row when stale).
 */
export const tableVersionSql = (rel: string) =>
  `(select md5(vc.oid::text || ':' || vc.xmin::text || ':' || coalesce(vd.description, '')) from pg_class vc
     left join pg_description vd on vd.objoid = vc.oid and vd.classoid = 'pg_class'::regclass and vd.objsubid = 0
    where vc.oid = ${rel})`;

/**
 * The published tables of `schemas` (all, or only `table`), ordered by schema (in the given
 * order) then name; the first geometry column of each.
 */
export async function listPublishedTables(
  pool: Pool,
  schemas: readonly string[],
  table?: string,
): Promise<PublishedTable[]> {
  const { rows } = await pool.query<{
    schema: string;
    table: string;
    key: string | null;
    key_type: string | null;
    geometry: string;
    srid: number;
    type: string;
    dims: number;
    comment: string | null;
    reltuples: number;
    version: string;
  }>(
    `select g.f_table_schema as schema, g.f_table_name as table, g.f_geometry_column as geometry, g.srid, g.type,
            g.coord_dimension as dims, obj_description(c.oid, 'pg_class') as comment, c.reltuples::float8 as reltuples,
            ${tableVersionSql('c.oid')} as version, k.attname as key, k.key_type
       from geometry_columns g
       join pg_namespace n on n.nspname = g.f_table_schema
       join pg_class c on c.relnamespace = n.oid and c.relname = g.f_table_name
       cross join lateral (select a.attname, format_type(a.atttypid, a.atttypmod) as key_type
                             from pg_index i join pg_attribute a on a.attrelid = i.indrelid and a.attnum = i.indkey[0]
                            where i.indrelid = c.oid and i.indisprimary and i.indnatts = 1) k
      where g.f_table_schema = any($1::text[]) and ($2::text is null or g.f_table_name = $2)
        and not starts_with(g.f_table_name, $3) and not starts_with(g.f_table_name, $4)
      order by array_position($1::text[], g.f_table_schema::text), g.f_table_name, g.f_geometry_column`,
    [schemas, table ?? null, STAGING_TABLE_PREFIX, CHUNK_TABLE_PREFIX],
  );
  const seen = new Set<string>();
  const out: PublishedTable[] = [];
  for (const r of rows) {
    const id = `${r.schema}.${r.table}`;
    if (seen.has(id) || !r.key) continue;
    seen.add(id);
    out.push({
      schema: r.schema,
      table: r.table,
      key: r.key,
      keyType: r.key_type ?? 'text',
      geometry: r.geometry,
      srid: r.srid,
      geometryType: r.type,
      dimensions: r.dims,
      facts: parseFactsComment(r.comment),
      estimatedRows: r.reltuples,
      version: r.version,
    });
  }
  return out;
}

/**
 * The OGC API Features collection id of each published table (in the order listed, schemas in
 * the order served): the table name, or `schema.table` when an earlier schema has a table of
 * that name. One rule for the server and for the links written elsewhere (STAC items).
 */
export function withCollectionIds<T extends PublishedTable>(tables: readonly T[]): (T & { id: string })[] {
  const taken = new Set<string>();
  return tables.map((t) => {
    const id = taken.has(t.table) ? `${t.schema}.${t.table}` : t.table;
    taken.add(t.table);
    return { ...t, id };
  });
}

/** The collection id under which `/features` serves `schema.table` among `schemas`; null when it does not. */
export async function featuresCollectionId(
  pool: Pool,
  schemas: readonly string[],
  schema: string,
  table: string,
): Promise<string | null> {
  if (!schemas.includes(schema)) return null;
  const all = withCollectionIds(await listPublishedTables(pool, schemas));
  return all.find((t) => t.schema === schema && t.table === table)?.id ?? null;
}

/** An attribute column of a published table, in table order. */
export interface TableColumn {
  name: string;
  /** SQL type as PostgreSQL writes it (`text`, `bigint`, `timestamp with time zone` ...). */
  type: string;
}

/** The attribute columns of a table (not its key, not its geometry columns), in table order. */
export async function tableColumns(pool: Pool, t: PublishedTable): Promise<TableColumn[]> {
  const { rows } = await pool.query<{ name: string; type: string; udt: string }>(
    `select a.attname as name, format_type(a.atttypid, a.atttypmod) as type, ty.typname as udt
       from pg_attribute a join pg_type ty on ty.oid = a.atttypid
      where a.attrelid = to_regclass($1) and a.attnum > 0 and not a.attisdropped order by a.attnum`,
    [`"${t.schema.replace(/"/g, '""')}"."${t.table.replace(/"/g, '""')}"`],
  );
  return rows
    .filter((r) => r.name !== t.key && r.udt !== 'geometry' && r.udt !== 'geography')
    .map((r) => ({ name: r.name, type: r.type }));
}
