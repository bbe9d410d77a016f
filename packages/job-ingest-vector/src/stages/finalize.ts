import { z } from 'zod';
import { defineStage, permanentError, quoteIdent } from '@coremachine/core-machine';
import { GEOM_COLUMN } from '@coremachine/geo/vector';
import type { Params } from '../params.ts';
import { analyzeTable, dropLoadLeftovers, indexAndSwap, jobComment, qualified, stagingTable, tableComment, tableExists, type TableRef } from '../tables.ts';

export const finalizeOutput = z.object({
  table: z.string(),
  written: z.int().nonnegative(),
  bbox: z.tuple([z.number(), z.number(), z.number(), z.number()]).nullable(),
  geometry_types: z.record(z.string(), z.int().nonnegative()),
});

/** Row count, extent and geometry types of a table, in one scan. */
async function describeTable(db: import('pg').Pool, t: TableRef) {
  const g = quoteIdent(GEOM_COLUMN);
  const { rows } = await db.query<{ t: string; n: number; xmin: number; ymin: number; xmax: number; ymax: number }>(
    `select t, n, st_xmin(e) as xmin, st_ymin(e) as ymin, st_xmax(e) as xmax, st_ymax(e) as ymax
       from (select geometrytype(${g}) as t, count(*)::bigint as n, st_extent(${g}) as e from ${qualified(t)} group by 1) x order by t`);
  let bbox: [number, number, number, number] | null = null;
  for (const r of rows) {
    if (r.xmin === null) continue;
    bbox = bbox ? [Math.min(bbox[0], r.xmin), Math.min(bbox[1], r.ymin), Math.max(bbox[2], r.xmax), Math.max(bbox[3], r.ymax)] : [r.xmin, r.ymin, r.xmax, r.ymax];
  }
  return {
    written: rows.reduce((a, r) => a + Number(r.n), 0),
    bbox,
    geometry_types: Object.fromEntries(rows.map((x) => [x.t, Number(x.n)])),
  };
}

/**
 * Stage 3, one task: ANALYZE, primary key and GiST index on the staging table, then the atomic swap into
 * place. Re-running it after a committed swap finds the job's marker on the table and only
 * reports.
 */
export const finalize = defineStage<Params>()({
  name: 'finalize',
  description: 'Index, analyze and swap the staging table into place',
  input: z.object({}),
  output: finalizeOutput,
  plan: () => [{ key: 'finalize', input: {} }],
  handler: async (_input, ctx) => {
    const { params } = ctx;
    const target = { schema: params.schema, table: params.table_name };
    const staging = stagingTable(params.schema, ctx.jobId);
    // Chunk tables of deliveries that died; every load task has settled by now.
    await dropLoadLeftovers(ctx.db, staging, { markers: false });
    if (!(await tableExists(ctx.db, staging))) {
      if ((await tableComment(ctx.db, target)) === jobComment(ctx.jobId)) {
        return { table: `${target.schema}.${target.table}`, ...(await describeTable(ctx.db, target)) };
      }
      throw permanentError('STAGING_MISSING', `The staging table ${staging.schema}.${staging.table} of this job is gone; submit the job again`);
    }
    // The statistics scan and ANALYZE read the table side by side (2 cores); neither blocks the other.
    const [stats] = await Promise.all([describeTable(ctx.db, staging), analyzeTable(ctx.db, staging)]);
    if (stats.written === 0) {
      await ctx.db.query(`drop table if exists ${qualified(staging)}`);
      await dropLoadLeftovers(ctx.db, staging);
      throw permanentError('NO_FEATURES_WRITTEN', `No feature of ${params.container_name}/${params.blob_name} had a usable geometry`);
    }
    try {
      await indexAndSwap(ctx.db, staging, target, params.overwrite, ctx.jobId);
    } catch (err) {
      if ((err as { code?: string }).code === 'TABLE_EXISTS') {
        await ctx.db.query(`drop table if exists ${qualified(staging)}`);
        await dropLoadLeftovers(ctx.db, staging);
      }
      throw err;
    }
    return { table: `${target.schema}.${target.table}`, ...stats };
  },
});
