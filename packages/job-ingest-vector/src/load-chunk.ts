import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { Pool } from 'pg';
import { from as copyFrom } from 'pg-copy-streams';
import type gdal from 'gdal-async';
import { quoteIdent } from '@coremachine/core-machine';
import {
  castGeometrySql, copyRowsForRange, FID_COLUMN, GEOM_COLUMN,
  type ColumnPlan, type FeatureRange, type GeometryPlan, type RangeStats,
} from '@coremachine/geo/vector';
import { qualified, type TableRef } from './tables.ts';

export interface LoadChunkOptions {
  staging: TableRef;
  columns: readonly ColumnPlan[];
  geometry: GeometryPlan;
  transform: gdal.CoordinateTransformation | null;
  checkLonLatRange: boolean;
  signal?: AbortSignal;
}

export interface ChunkStats extends RangeStats {
  /** Rows this run inserted (0 when an earlier delivery of the same chunk already did). */
  inserted: number;
  repaired: number;
}

/**
 * Loads one range of features into the staging table, exactly once whatever the number of
 * deliveries: the rows are COPYed into a temporary table, then inserted with
 * `ON CONFLICT (fid) DO NOTHING` on the source position key, in one transaction. Invalid
 * geometries are repaired with ST_MakeValid; geometries empty after repair are skipped.
 */
export async function loadChunk(pool: Pool, layer: gdal.Layer, range: FeatureRange, options: LoadChunkOptions): Promise<ChunkStats> {
  const stats: ChunkStats = { read: 0, skipped: {}, inserted: 0, repaired: 0 };
  const colNames = options.columns.map((c) => quoteIdent(c.name));
  const fid = quoteIdent(FID_COLUMN);
  const geom = quoteIdent(GEOM_COLUMN);
  const client = await pool.connect();
  try {
    await client.query('begin');
    await client.query("set local timezone = 'UTC'");
    const tempCols = [`${fid} bigint`, ...options.columns.map((c, i) => `${colNames[i]} ${c.pgType}`), `${geom} geometry`];
    await client.query(`create temp table cm_chunk (${tempCols.join(', ')}) on commit drop`);
    const copy = client.query(copyFrom(`copy cm_chunk (${[fid, ...colNames, geom].join(', ')}) from stdin`));
    await pipeline(Readable.from(copyRowsForRange(layer, range, {
      columns: options.columns,
      transform: options.transform,
      checkLonLatRange: options.checkLonLatRange,
      ...(options.signal ? { signal: options.signal } : {}),
    }, stats)), copy);

    const attrs = colNames.map((c) => `${c}`).join(', ');
    const attrList = attrs ? `${attrs}, ` : '';
    const { rows } = await client.query<{ inserted: number; repaired: number; emptied: number }>(`
      with src as (
        select ${fid}, ${attrList}st_setsrid(${geom}, 4326) as g from cm_chunk
      ), checked as (
        select ${fid}, ${attrList}g, not st_isvalid(g) as repaired from src
      ), fitted as materialized (
        select ${fid}, ${attrList}${castGeometrySql('(case when repaired then st_makevalid(g) else g end)', options.geometry)} as g, repaired from checked
      ), ins as (
        insert into ${qualified(options.staging)} (${[fid, ...colNames, geom].join(', ')})
        select ${fid}, ${attrList}g from fitted where not st_isempty(g)
        on conflict (${fid}) do nothing
        returning 1
      )
      select (select count(*) from ins)::int as inserted,
             (select count(*) from fitted where repaired)::int as repaired,
             (select count(*) from fitted where st_isempty(g))::int as emptied`);
    await client.query('commit');
    const r = rows[0]!;
    stats.inserted = r.inserted;
    stats.repaired = r.repaired;
    if (r.emptied) stats.skipped.empty_after_repair = r.emptied;
    client.release();
    return stats;
  } catch (err) {
    // A failed COPY can leave the connection mid-protocol: discard it (the server rolls back).
    client.release(err instanceof Error ? err : new Error(String(err)));
    throw err;
  }
}
