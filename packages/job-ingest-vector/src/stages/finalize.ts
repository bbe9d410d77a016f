import { z } from 'zod';
import { defineStage, permanentError, quoteIdent } from '@coremachine/core-machine';
import { GEOM_COLUMN } from '@coremachine/geo/vector';
import type { Params } from '../params.ts';
import { indexAndSwap, jobComment, qualified, stagingTable, tableComment, tableExists, type TableRef } from '../tables.ts';

export const finalizeOutput = z.object({
  table: z.string(),
  written: z.int().nonnegative(),
  bbox: z.tuple([z.number(), z.number(), z.number(), z.number()]).nullable(),
  geometry_types: z.record(z.string(), z.int().nonnegative()),
});

async function describeTable(db: import('pg').Pool, t: TableRef) {
  const g = quoteIdent(GEOM_COLUMN);
  const { rows } = await db.query<{ n: number; xmin: number | null; ymin: number | null; xmax: number | null; ymax: number | null }>(
    `select n, st_xmin(e) as xmin, st_ymin(e) as ymin, st_xmax(e) as xmax, st_ymax(e) as ymax
       from (select count(*)::bigint as n, st_extent(${g}) as e from ${qualified(t)}) x`);
  const types = await db.query<{ t: string; n: number }>(`select geometrytype(${g}) as t, count(*)::bigint as n from ${qualified(t)} group by 1 order by 1`);
  const r = rows[0];
  return {
    written: r?.n ?? 0,
    bbox: r && r.xmin !== null ? [r.xmin, r.ymin!, r.xmax!, r.ymax!] as [number, number, number, number] : null,
    geometry_types: Object.fromEntries(types.rows.map((x) => [x.t, x.n])),
  };
}

/**
 * Stage 3, one task: GiST index and ANALYZE on the staging table, then the atomic swap into
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
    if (!(await tableExists(ctx.db, staging))) {
      if ((await tableComment(ctx.db, target)) === jobComment(ctx.jobId)) {
        return { table: `${target.schema}.${target.table}`, ...(await describeTable(ctx.db, target)) };
      }
      throw permanentError('STAGING_MISSING', `The staging table ${staging.schema}.${staging.table} of this job is gone; submit the job again`);
    }
    const stats = await describeTable(ctx.db, staging);
    if (stats.written === 0) {
      await ctx.db.query(`drop table if exists ${qualified(staging)}`);
      throw permanentError('NO_FEATURES_WRITTEN', `No feature of ${params.container_name}/${params.blob_name} had a usable geometry`);
    }
    try {
      await indexAndSwap(ctx.db, staging, target, params.overwrite, ctx.jobId);
    } catch (err) {
      if ((err as { code?: string }).code === 'TABLE_EXISTS') await ctx.db.query(`drop table if exists ${qualified(staging)}`);
      throw err;
    }
    return { table: `${target.schema}.${target.table}`, ...stats };
  },
});
