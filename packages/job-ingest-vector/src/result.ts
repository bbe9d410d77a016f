import { z } from 'zod';
import { outputsOf, type AggregateContext } from '@coremachine/core-machine';
import { dimensionsOf, pgSubtype } from '@coremachine/geo/vector';
import { targetTableName, type Params } from './params.ts';
import { prepare } from './stages/prepare.ts';
import { load } from './stages/load.ts';
import { finalize } from './stages/finalize.ts';

export const result = z.object({
  job_type: z.literal('ingest_vector'),
  table: z.string(),
  schema: z.string(),
  table_name: z.string(),
  source: z.object({
    container: z.string(),
    blob: z.string(),
    size: z.number(),
    format: z.string(),
    driver: z.string(),
    layer: z.string(),
  }),
  features_read: z.int().nonnegative(),
  features_written: z.int().nonnegative(),
  features_skipped: z.int().nonnegative(),
  skipped_reasons: z.record(z.string(), z.int().nonnegative()),
  features_repaired: z.int().nonnegative(),
  chunks: z.int().nonnegative(),
  chunk_size: z.int().positive(),
  bbox: z.tuple([z.number(), z.number(), z.number(), z.number()]).nullable(),
  geometry_column_type: z.string(),
  /** Coordinate dimensions of the table (`XY`, `XYZ`, `XYM`, `XYZM`) and of the source. */
  dimensions: z.string(),
  source_dimensions: z.string(),
  /** Coordinates whose Z or M was dropped (only with force_2d). */
  coordinates_flattened: z.int().nonnegative(),
  geometry_types: z.record(z.string(), z.int().nonnegative()),
  source_crs: z.string().nullable(),
  crs_assumed: z.boolean(),
  /** The CRS the coordinates were taken in when the source declares none (`EPSG:4326`), else null. */
  assumed_crs: z.string().nullable(),
  /** How the attribute text was decoded: the encoding and where it came from (parameter, cpg, detected, utf-8). */
  encoding: z.object({ name: z.string().nullable(), source: z.string() }).nullable(),
  warnings: z.array(z.string()),
  columns: z.array(z.object({ name: z.string(), source: z.string(), type: z.string() })),
  duration_s: z.number().nonnegative(),
});

export async function aggregate(ctx: AggregateContext<Params>): Promise<z.input<typeof result>> {
  const [prep] = outputsOf(prepare, await ctx.tasks('prepare'));
  const loads = outputsOf(load, await ctx.tasks('load'));
  const [fin] = outputsOf(finalize, await ctx.tasks('finalize'));
  if (!prep || !fin) throw new Error('ingest_vector aggregate: prepare or finalize produced no output');
  const p = prep.output;
  const skippedReasons: Record<string, number> = {};
  let read = 0;
  let repaired = 0;
  let flattened = 0;
  for (const l of loads) {
    read += l.output.read;
    flattened += l.output.flattened;
    repaired += l.output.repaired;
    for (const [k, v] of Object.entries(l.output.skipped)) skippedReasons[k] = (skippedReasons[k] ?? 0) + v;
  }
  // Rows loaded straight into the staging table are checked (empty, invalid) by finalize.
  repaired += fin.output.repaired;
  for (const [k, v] of Object.entries(fin.output.skipped)) skippedReasons[k] = (skippedReasons[k] ?? 0) + v;
  const skipped = Object.values(skippedReasons).reduce((a, b) => a + b, 0);
  return {
    job_type: 'ingest_vector',
    table: fin.output.table,
    schema: ctx.params.schema,
    table_name: targetTableName(ctx.params),
    source: p.source,
    features_read: read,
    features_written: fin.output.written,
    features_skipped: skipped,
    skipped_reasons: skippedReasons,
    features_repaired: repaired,
    chunks: p.ranges.length,
    chunk_size: p.chunk_size,
    bbox: fin.output.bbox,
    geometry_column_type: pgSubtype(p.geometry),
    dimensions: dimensionsOf(p.geometry),
    source_dimensions: p.source_dimensions,
    coordinates_flattened: flattened,
    geometry_types: fin.output.geometry_types,
    source_crs: p.source_crs,
    crs_assumed: p.crs_assumed,
    assumed_crs: p.assumed_crs,
    encoding: p.encoding ? { name: p.encoding.name, source: p.encoding.source } : null,
    warnings: p.warnings,
    columns: p.columns.map((c) => ({ name: c.name, source: c.source, type: c.pgType })),
    duration_s: Math.max(0, (Date.now() - Date.parse(p.started_at)) / 1000),
  };
}
