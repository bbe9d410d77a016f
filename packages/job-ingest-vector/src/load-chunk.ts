import { randomBytes } from 'node:crypto';
import type { Pool, PoolClient } from 'pg';
import type gdal from 'gdal-async';
import { quoteIdent, quoteLiteral } from '@coremachine/core-machine';
import {
  appendRows,
  castGeometrySql,
  CHUNK_FID,
  CHUNK_GEOM,
  dimensionsOf,
  execPg,
  FID_COLUMN,
  fidFilter,
  GEOM_COLUMN,
  gpkgRangeSql,
  openPgTransaction,
  translateChunk,
  zmFlagOf,
  type ColumnPlan,
  type Dimensions,
  type FeatureRange,
  type GeometryPlan,
  type RangeStats,
} from '@coremachine/geo/vector';
import { chunkTablePrefix, markersTable, qualified, type TableRef } from './tables.ts';

export interface LoadChunkOptions {
  staging: TableRef;
  columns: readonly ColumnPlan[];
  geometry: GeometryPlan;
  /** The source's coordinate dimensions; absent: the column's (nothing is dropped). */
  sourceDimensions?: Dimensions | undefined;
  /** GDAL `PG:` connection string of the database holding the staging table. */
  pg: string;
  checkLonLatRange: boolean;
  signal?: AbortSignal | undefined;
}

export interface ChunkStats extends RangeStats {
  /** Rows this run inserted (0 when an earlier delivery of the same chunk already did). */
  inserted: number;
  repaired: number;
  /** Coordinates whose Z or M was dropped to fit the column. */
  flattened: number;
}

/** Quotes a source field name, which may hold any character (it is not one of our identifiers). */
const quoteField = (name: string) => `"${name.replace(/"/g, '""')}"`;

interface Source {
  dataset: gdal.Dataset;
  layer: gdal.Layer;
  driver?: string;
}

/** The row key: the source FID or the row number within the chunk, shifted (see FeatureRange). */
function fidSql(range: FeatureRange): string {
  const offset = range.preserveFid ? (range.fidOffset ?? 0) : (range.fidOffset ?? range.start);
  return offset ? `${quoteIdent(CHUNK_FID)} + ${offset}` : quoteIdent(CHUNK_FID);
}

/**
 * The geometry as the column wants it. Most rows already fit (right type, dimensions, no
 * curves) and are taken as they are; the others go through the full cast.
 */
function fittedGeometrySql(g: string, plan: GeometryPlan): string {
  const zm = `st_zmflag(${g}) = ${zmFlagOf(plan)}`;
  const fits =
    plan.type === 'Geometry'
      ? `${zm} and not st_hasarc(${g})`
      : `geometrytype(${g}) = '${plan.type.toUpperCase()}' and ${zm}`;
  return `case when ${fits} then ${g} else ${castGeometrySql(g, plan)} end`;
}

async function translate(src: Source, table: string, range: FeatureRange, options: LoadChunkOptions): Promise<number> {
  const where = range.fidMin !== undefined ? fidFilter(src.layer, range.fidMin, range.fidNext) : null;
  const base = {
    pg: options.pg,
    table,
    where,
    preserveFid: !!range.preserveFid,
    dimensions: options.sourceDimensions ?? dimensionsOf(options.geometry),
    signal: options.signal,
  };
  try {
    await translateChunk(src.dataset, src.layer, base);
    return 0;
  } catch (err) {
    if (!/reproject/i.test((err as Error).message)) throw err;
    // Some features cannot be reprojected: load the others, and count the missing ones.
    await translateChunk(src.dataset, src.layer, { ...base, skipFailures: true });
    src.layer.setAttributeFilter(where);
    const expected = src.layer.features.count(true);
    src.layer.setAttributeFilter(null);
    return -expected;
  }
}

/** The chunk's marker stats, if it is loaded (`inserted` 0: this delivery inserted nothing). */
async function loadedStats(db: Pool | PoolClient, markers: string, index: number): Promise<ChunkStats | null> {
  const { rows } = await db.query<{ stats: ChunkStats }>(`select stats from ${markers} where chunk = $1`, [index]);
  return rows[0] ? { ...rows[0].stats, flattened: rows[0].stats.flattened ?? 0, inserted: 0 } : null;
}

/**
 * Loads one range of features into the staging table, exactly once whatever the number of
 * deliveries. GeoPackage FID ranges go straight into the staging table (see loadDirect); any
 * other range, or one whose rows do not all fit the table as GDAL writes them, goes through a
 * chunk table (see loadViaChunkTable).
 */
export async function loadChunk(
  pool: Pool,
  src: Source,
  range: FeatureRange,
  options: LoadChunkOptions,
): Promise<ChunkStats> {
  const sameDimensions =
    (options.sourceDimensions ?? dimensionsOf(options.geometry)) === dimensionsOf(options.geometry);
  if (
    src.driver === 'GPKG' &&
    range.preserveFid &&
    range.fidMin !== undefined &&
    !options.checkLonLatRange &&
    sameDimensions
  ) {
    const direct = await loadDirect(pool, src, range, options);
    if (direct) return direct;
  }
  return loadViaChunkTable(pool, src, range, options);
}

/** How long a delivery waits, inside GDAL's synchronous open, for another delivery's marker. */
const GUARD_LOCK_TIMEOUT = '100ms';

/**
 * GDAL appends the range to the staging table itself, in one transaction this code owns: it
 * begins by inserting the chunk's marker (a unique key: a chunk already loaded fails the open;
 * a delivery in flight holds the key, and this one waits for it outside GDAL), GDAL's COPY
 * runs inside it, and only after the translation succeeded are the marker's counts set and
 * the transaction committed. A delivery killed or failed at any point commits nothing. Null,
 * empty and invalid geometries are left to finalize (one scan of the whole table); a row GDAL
 * cannot write as the column wants (null geometry, another type) fails the translation, and the
 * range is then loaded through a chunk table instead (null returned).
 */
async function loadDirect(
  pool: Pool,
  src: Source,
  range: FeatureRange,
  options: LoadChunkOptions,
): Promise<ChunkStats | null> {
  const markers = qualified(markersTable(options.staging));
  const staging = qualified(options.staging);
  const guard = `SET LOCAL lock_timeout = '${GUARD_LOCK_TIMEOUT}';INSERT INTO ${markers} (chunk, stats) VALUES (${range.index}, '{}');SET LOCAL lock_timeout = 0`;
  for (;;) {
    const earlier = await loadedStats(pool, markers, range.index);
    if (earlier) return earlier;
    let dest: gdal.Dataset;
    try {
      dest = openPgTransaction({ pg: options.pg, table: `${options.staging.schema}.${options.staging.table}`, guard });
    } catch (err) {
      const message = (err as Error).message;
      if (/duplicate key/i.test(message)) continue;
      if (/lock timeout/i.test(message)) {
        // Another delivery holds the marker: wait for its outcome on a pool connection (the
        // insert blocks until it commits or rolls back), then look again.
        const client = await pool.connect();
        try {
          await client.query('begin');
          await client.query(`insert into ${markers} (chunk, stats) values ($1, '{}') on conflict do nothing`, [
            range.index,
          ]);
        } finally {
          await client.query('rollback').catch(() => {});
          client.release();
        }
        continue;
      }
      throw err;
    }
    try {
      try {
        await appendRows(dest, src.dataset, {
          table: `${options.staging.schema}.${options.staging.table}`,
          sql: gpkgRangeSql(src.layer, options.columns, range.fidMin!, range.fidNext, range.fidOffset ?? 0),
          geometry: options.geometry,
          layer: src.layer,
          signal: options.signal,
        });
      } catch {
        return null;
      }
      // Rows this transaction inserted: counted by PostgreSQL, no scan.
      execPg(
        dest,
        `UPDATE ${markers} SET stats = jsonb_build_object('read', n, 'inserted', n, 'skipped', '{}'::jsonb, 'repaired', 0, 'flattened', 0)
        FROM (SELECT pg_stat_get_xact_tuples_inserted(${quoteLiteral(staging)}::regclass) AS n) x WHERE chunk = ${range.index}`,
      );
      execPg(dest, 'COMMIT');
    } finally {
      dest.close();
    }
    const { rows } = await pool.query<{ stats: ChunkStats }>(`select stats from ${markers} where chunk = $1`, [
      range.index,
    ]);
    if (!rows[0]?.stats || typeof rows[0].stats.read !== 'number') {
      throw new Error(
        `chunk ${range.index} of ${options.staging.schema}.${options.staging.table}: the load transaction did not commit`,
      );
    }
    return rows[0].stats;
  }
}

/**
 * Loads one range through a chunk table of this delivery. GDAL writes the range into a fresh
 * unlogged chunk table (no row crosses JavaScript); then, in one transaction holding the
 * chunk's advisory lock, the rows with a usable geometry are repaired (ST_MakeValid, counted),
 * fitted to the column and inserted into the staging table, and the chunk's marker row is
 * written with its counts. A later delivery finds the marker and inserts nothing; a delivery
 * that dies leaves nothing but its chunk table, which finalize drops.
 */
async function loadViaChunkTable(
  pool: Pool,
  src: Source,
  range: FeatureRange,
  options: LoadChunkOptions,
): Promise<ChunkStats> {
  const markers = qualified(markersTable(options.staging));
  const done = async (db: Pool | PoolClient) => {
    const { rows } = await db.query<{ stats: ChunkStats }>(`select stats from ${markers} where chunk = $1`, [
      range.index,
    ]);
    return rows[0] ? { ...rows[0].stats, flattened: rows[0].stats.flattened ?? 0, inserted: 0 } : null;
  };
  const earlier = await done(pool);
  if (earlier) return earlier;

  const chunk: TableRef = {
    schema: options.staging.schema,
    table: `${chunkTablePrefix(options.staging)}${range.index}_${randomBytes(3).toString('hex')}`,
  };
  const table = qualified(chunk);
  try {
    const translated = await translate(src, `${chunk.schema}.${chunk.table}`, range, options);
    const g = quoteIdent(CHUNK_GEOM);
    const client = await pool.connect();
    try {
      await client.query('begin');
      // PostGIS cost estimates make PostgreSQL JIT-compile these scans, which costs more than running them.
      await client.query('set local jit = off');
      await client.query('select pg_advisory_xact_lock(hashtext($1))', [
        `cm_vector_chunk:${options.staging.schema}.${options.staging.table}:${range.index}`,
      ]);
      const again = await done(client);
      if (again) {
        await client.query('commit');
        client.release();
        return again;
      }
      const outOfRange = options.checkLonLatRange
        ? `st_xmin(${g}) < -180 or st_xmax(${g}) > 180 or st_ymin(${g}) < -90 or st_ymax(${g}) > 90`
        : 'false';
      const usable = `${g} is not null and not st_isempty(${g}) and not (${outOfRange})`;
      // One scan counts the skipped rows and the invalid ones (points are always valid); the
      // repair pass, which rewrites rows, runs only when there is something to repair.
      const invalid =
        options.geometry.family === 'point' ? '0' : `count(*) filter (where ${usable} and not st_isvalid(${g}))::int`;
      // Coordinates that lose a dimension (force_2d): the chunk table holds the source's dimensions.
      const target = zmFlagOf(options.geometry);
      const flattened = `coalesce(sum(st_npoints(${g})) filter (where ${usable} and (st_zmflag(${g}) & ${3 - target}) <> 0), 0)::bigint`;
      const {
        rows: [c],
      } = await client.query<{
        n: number;
        nulls: number;
        empties: number;
        out: number;
        invalid: number;
        flattened: string;
      }>(
        `select count(*)::int n, count(*) filter (where ${g} is null)::int nulls,
                count(*) filter (where st_isempty(${g}))::int empties,
                count(*) filter (where not st_isempty(${g}) and (${outOfRange}))::int out,
                ${invalid} invalid, ${flattened} flattened from ${table}`,
      );
      let repaired = 0;
      let emptied = 0;
      if (c!.invalid > 0) {
        const {
          rows: [r],
        } = await client.query<{ n: number; emptied: number }>(
          `with u as (update ${table} set ${g} = st_makevalid(${g}) where ${usable} and not st_isvalid(${g}) returning st_isempty(${g}) e)
           select count(*)::int n, count(*) filter (where e)::int emptied from u`,
        );
        repaired = r!.n;
        emptied = r!.emptied;
      }
      const cols = options.columns.map((col) => quoteIdent(col.name));
      const values = options.columns.map((col) => `${quoteField(col.source)}::${col.pgType}`);
      const geom = fittedGeometrySql(`st_setsrid(${g}, 4326)`, options.geometry);
      const ins = await client.query(
        `insert into ${qualified(options.staging)} (${[quoteIdent(FID_COLUMN), ...cols, quoteIdent(GEOM_COLUMN)].join(', ')})
         select ${[fidSql(range), ...values, geom].join(', ')} from ${table} where ${usable}`,
      );
      const skipped: ChunkStats['skipped'] = {};
      if (c!.nulls) skipped.null_geometry = c!.nulls;
      if (c!.empties) skipped.empty_geometry = c!.empties;
      if (c!.out) skipped.coordinates_out_of_range = c!.out;
      if (emptied) skipped.empty_after_repair = emptied;
      if (translated < 0 && -translated > c!.n) skipped.reprojection_failed = -translated - c!.n;
      const stats: ChunkStats = {
        read: c!.n + (skipped.reprojection_failed ?? 0),
        skipped,
        inserted: ins.rowCount ?? 0,
        repaired,
        flattened: Number(c!.flattened),
      };
      // A direct delivery (loadDirect) does not take the advisory lock: the marker's key decides.
      const marked = await client.query(
        `insert into ${markers} (chunk, stats) values ($1, $2) on conflict do nothing`,
        [range.index, stats],
      );
      if (marked.rowCount === 0) {
        await client.query('rollback');
        client.release();
        return (await done(pool))!;
      }
      await client.query('commit');
      client.release();
      return stats;
    } catch (err) {
      await client.query('rollback').catch(() => {});
      client.release(err instanceof Error ? err : new Error(String(err)));
      throw err;
    }
  } finally {
    await pool.query(`drop table if exists ${table}`).catch(() => {});
  }
}
