import { z } from 'zod';
import {
  defineStage,
  permanentError,
  quoteIdent,
  TaskError,
  withTransaction,
  type TaskContext,
} from '@coremachine/core-machine';
import { castGeometrySql, GEOM_COLUMN, type GeometryPlan } from '@coremachine/geo/vector';
import { targetTableName, type Params } from '../params.ts';
import type { Pool, PoolClient } from 'pg';
import { skipped } from '../schemas.ts';
import {
  analyzeTable,
  buildIndexes,
  dropJobTables,
  dropLoadLeftovers,
  markersTable,
  qualified,
  stagingTable,
  swapIntoPlace,
  tableFacts,
  tableExists,
  type TableRef,
} from '../tables.ts';

export const finalizeOutput = z.object({
  table: z.string(),
  written: z.int().nonnegative(),
  bbox: z.tuple([z.number(), z.number(), z.number(), z.number()]).nullable(),
  geometry_types: z.record(z.string(), z.int().nonnegative()),
  /** Rows loaded straight into the staging table and removed or repaired here. */
  repaired: z.int().nonnegative().default(0),
  skipped: skipped.default({}),
});

type TableStats = {
  written: number;
  bbox: [number, number, number, number] | null;
  geometry_types: Record<string, number>;
  empties: number;
  invalid: number;
};

/** Parallel parts of the finalize scan (block ranges read side by side). */
const SCAN_PARTS = 2;

/**
 * Row count, extent, geometry types, and the empty and invalid geometries of a table, in one
 * scan split into block ranges read side by side (TID range scans); invalid ones only when
 * `validity` (points are always valid).
 */
async function describeTable(db: Pool, t: TableRef, validity = false): Promise<TableStats> {
  const g = quoteIdent(GEOM_COLUMN);
  const {
    rows: [size],
  } = await db.query<{ blocks: number }>(
    `select (pg_relation_size($1::regclass) / current_setting('block_size')::int)::int as blocks`,
    [qualified(t)],
  );
  const step = Math.max(1, Math.ceil((size!.blocks + 1) / SCAN_PARTS));
  const parts = Array.from({ length: SCAN_PARTS }, (_, i) =>
    i === SCAN_PARTS - 1
      ? `ctid >= '(${i * step},0)'::tid`
      : `ctid >= '(${i * step},0)'::tid and ctid < '(${(i + 1) * step},0)'::tid`,
  );
  const invalid = validity ? `not st_isempty(${g}) and not st_isvalid(${g})` : 'false';
  // Per row only small values reach the grouping (not the geometries, which a sort would spill).
  const results = await Promise.all(
    parts.map((where) =>
      withoutJit(db, (c) =>
        c.query<{
          t: string;
          n: number;
          xmin: number;
          ymin: number;
          xmax: number;
          ymax: number;
          empties: number;
          invalid: number;
        }>(
          `select t, n, empties, invalid, st_xmin(e) as xmin, st_ymin(e) as ymin, st_xmax(e) as xmax, st_ymax(e) as ymax
       from (select t, count(*)::bigint as n, st_extent(b) as e, count(*) filter (where em)::int as empties, count(*) filter (where inv)::int as invalid
               from (select geometrytype(${g}) as t, box2d(${g}) as b, st_isempty(${g}) as em, ${invalid} as inv
                       from ${qualified(t)} where ${where} offset 0) r group by 1) x`,
        ),
      ),
    ),
  );
  let bbox: [number, number, number, number] | null = null;
  const types: Record<string, number> = {};
  let written = 0;
  let empties = 0;
  let invalidCount = 0;
  for (const r of results.flatMap((x) => x.rows)) {
    types[r.t] = (types[r.t] ?? 0) + Number(r.n);
    written += Number(r.n);
    empties += r.empties;
    invalidCount += r.invalid;
    if (r.xmin === null) continue;
    bbox = bbox
      ? [Math.min(bbox[0], r.xmin), Math.min(bbox[1], r.ymin), Math.max(bbox[2], r.xmax), Math.max(bbox[3], r.ymax)]
      : [r.xmin, r.ymin, r.xmax, r.ymax];
  }
  const geometryTypes = Object.fromEntries(
    Object.keys(types)
      .sort()
      .map((k) => [k, types[k]!]),
  );
  return { written, bbox, geometry_types: geometryTypes, empties, invalid: invalidCount };
}

/**
 * Runs `fn` on one connection with JIT compilation and parallel workers off: the PostGIS
 * functions' high cost estimates make PostgreSQL spend longer compiling a scan than running it,
 * and the scans are already split across connections.
 */
export async function withoutJit<T>(db: Pool, fn: (c: PoolClient) => Promise<T>): Promise<T> {
  return withTransaction(db, async (client) => {
    await client.query('set local jit = off');
    await client.query('set local max_parallel_workers_per_gather = 0');
    await client.query("set local work_mem = '64MB'");
    return fn(client);
  });
}

/** The staging table's geometry column as a plan (for fitting repaired geometries to it). */
async function columnPlanOf(db: Pool, t: TableRef): Promise<GeometryPlan> {
  const {
    rows: [c],
  } = await db.query<{ type: string; dims: number }>(
    `select type, coord_dimension as dims from geometry_columns where f_table_schema = $1 and f_table_name = $2 and f_geometry_column = $3`,
    [t.schema, t.table, GEOM_COLUMN],
  );
  // geometry_columns: `MULTILINESTRINGM` with 3 dimensions for M, the bare type with 3 (Z) or 4 (ZM).
  const raw = (c?.type ?? 'GEOMETRY').toUpperCase();
  const dims = c?.dims ?? 2;
  const mOnly = dims === 3 && raw.endsWith('M') && raw !== 'GEOM';
  const type = mOnly ? raw.slice(0, -1) : raw;
  const z = dims === 4 || (dims === 3 && !mOnly);
  const m = dims === 4 || mOnly;
  const plans: Record<string, Omit<GeometryPlan, 'z'>> = {
    POINT: { type: 'Point', family: 'point', multi: false },
    MULTIPOINT: { type: 'MultiPoint', family: 'point', multi: true },
    MULTILINESTRING: { type: 'MultiLineString', family: 'line', multi: true },
    MULTIPOLYGON: { type: 'MultiPolygon', family: 'polygon', multi: true },
    GEOMETRYCOLLECTION: { type: 'GeometryCollection', family: 'collection', multi: false },
  };
  return { ...(plans[type] ?? { type: 'Geometry', family: null, multi: false }), z, m };
}

/** Runs of the finalize task; the last failing one removes the job's tables. */
export const FINALIZE_ATTEMPTS = 4;

/** Chunk number of finalize's own counts in the markers table (chunks are numbered from 0). */
const FINALIZE_MARKER = -1;
type Cleanup = { repaired: number; skipped: Record<string, number> };

/**
 * Removes the empty geometries and repairs the invalid ones (ST_MakeValid, fitted to the
 * column; those it empties are removed) of rows loaded straight into the staging table, in one
 * transaction that also records the counts, so that a re-run finalize reports them again.
 */
async function cleanUp(db: Pool, staging: TableRef, stats: TableStats): Promise<Cleanup> {
  const markers = qualified(markersTable(staging));
  const earlier = async () => {
    const { rows } = await db.query<{ stats: Cleanup }>(`select stats from ${markers} where chunk = $1`, [
      FINALIZE_MARKER,
    ]);
    return rows[0]?.stats ?? { repaired: 0, skipped: {} };
  };
  if (stats.empties === 0 && stats.invalid === 0) return earlier();
  const g = quoteIdent(GEOM_COLUMN);
  const t = qualified(staging);
  const plan = await columnPlanOf(db, staging);
  return withTransaction(db, async (client) => {
    await client.query('set local jit = off');
    const {
      rows: [prior],
    } = await client.query<{ stats: Cleanup }>(`select stats from ${markers} where chunk = $1 for update`, [
      FINALIZE_MARKER,
    ]);
    const out: Cleanup = prior?.stats ?? { repaired: 0, skipped: {} };
    const add = (k: string, n: number) => {
      if (n) out.skipped[k] = (out.skipped[k] ?? 0) + n;
    };
    const {
      rows: [e],
    } = await client.query<{ n: number }>(
      `with d as (delete from ${t} where st_isempty(${g}) returning 1) select count(*)::int n from d`,
    );
    add('empty_geometry', e!.n);
    if (stats.invalid > 0) {
      const {
        rows: [r],
      } = await client.query<{ n: number; emptied: number }>(
        `with u as (update ${t} set ${g} = ${castGeometrySql(`st_makevalid(${g})`, plan)} where not st_isvalid(${g}) returning st_isempty(${g}) e)
         select count(*)::int n, count(*) filter (where e)::int emptied from u`,
      );
      out.repaired += r!.n;
      if (r!.emptied) {
        await client.query(`delete from ${t} where st_isempty(${g})`);
        add('empty_after_repair', r!.emptied);
      }
    }
    await client.query(
      `insert into ${markers} (chunk, stats) values ($1, $2) on conflict (chunk) do update set stats = excluded.stats`,
      [FINALIZE_MARKER, out],
    );
    return out;
  });
}

/**
 * Stage 3, one task: statistics and repairs, ANALYZE, primary key and GiST index, then the
 * atomic swap into place. Re-running it after a committed swap finds the job's marker on the
 * table and only reports.
 */
export const finalize = defineStage<Params>()({
  name: 'finalize',
  description: 'Index, analyze and swap the staging table into place',
  input: z.object({}),
  output: finalizeOutput,
  plan: () => [{ key: 'finalize', input: {} }],
  retry: { maxAttempts: FINALIZE_ATTEMPTS },
  handler: async (_input, ctx) => {
    try {
      return await finalizeJob(ctx);
    } catch (err) {
      // The job fails with this task: it leaves no table behind (after a committed swap the
      // staging table is the target, and no table of that name is left to drop).
      if ((err instanceof TaskError && err.permanent) || ctx.attempt >= FINALIZE_ATTEMPTS)
        await dropJobTables(ctx.db, stagingTable(ctx.params.schema, ctx.jobId));
      throw err;
    }
  },
});

async function finalizeJob(ctx: TaskContext<Params>): Promise<z.output<typeof finalizeOutput>> {
  {
    const { params } = ctx;
    const target = { schema: params.schema, table: targetTableName(params) };
    const staging = stagingTable(params.schema, ctx.jobId);
    // Chunk tables of deliveries that died; every load task has settled by now.
    await dropLoadLeftovers(ctx.db, staging, { markers: false });
    if (!(await tableExists(ctx.db, staging))) {
      if ((await tableFacts(ctx.db, target))?.job === ctx.jobId) {
        const t = await describeTable(ctx.db, target);
        return {
          table: `${target.schema}.${target.table}`,
          written: t.written,
          bbox: t.bbox,
          geometry_types: t.geometry_types,
          repaired: 0,
          skipped: {},
        };
      }
      throw permanentError(
        'STAGING_MISSING',
        `The staging table ${staging.schema}.${staging.table} of this job is gone; submit the job again`,
      );
    }
    // The statistics scan (which also finds the empty and invalid geometries of rows GDAL wrote
    // straight into the table) runs beside ANALYZE and then the two index builds: none of them
    // blocks the scan (ANALYZE cannot run beside the builds, so it goes first). The single-threaded
    // GiST build then no longer leaves a core idle after the scan. Repairs wait for the builds
    // (the indexes follow the updated rows).
    const plan = await columnPlanOf(ctx.db, staging);
    const validity = plan.family !== 'point';
    const [scanned, built] = await Promise.allSettled([
      describeTable(ctx.db, staging, validity),
      analyzeTable(ctx.db, staging).then(() => buildIndexes(ctx.db, staging)),
    ]);
    if (scanned.status === 'rejected') throw scanned.reason;
    if (built.status === 'rejected') throw built.reason;
    let stats = scanned.value;
    const cleanup = await cleanUp(ctx.db, staging, stats);
    if (stats.empties > 0 || stats.invalid > 0) stats = await describeTable(ctx.db, staging);
    if (stats.written === 0) {
      await ctx.db.query(`drop table if exists ${qualified(staging)}`);
      await dropLoadLeftovers(ctx.db, staging);
      throw permanentError(
        'NO_FEATURES_WRITTEN',
        `No feature of ${params.container_name}/${params.blob_name} had a usable geometry`,
      );
    }
    try {
      await swapIntoPlace(ctx.db, staging, target, params.overwrite, {
        job: ctx.jobId,
        rows: stats.written,
        bbox: stats.bbox,
        loaded_at: new Date().toISOString(),
      });
    } catch (err) {
      if ((err as { code?: string }).code === 'TABLE_EXISTS') {
        await ctx.db.query(`drop table if exists ${qualified(staging)}`);
        await dropLoadLeftovers(ctx.db, staging);
      }
      throw err;
    }
    return {
      table: `${target.schema}.${target.table}`,
      written: stats.written,
      bbox: stats.bbox,
      geometry_types: stats.geometry_types,
      ...cleanup,
    };
  }
}
