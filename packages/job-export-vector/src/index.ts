import { defineJob, outputsOf } from '@coremachine/core-machine';
import { z } from 'zod';
import { outputBlob, parameters } from './params.ts';
import { assemble, exportChunk, plan } from './stages.ts';

export { parameters, FORMATS, outputBlob, type Params, type ExportFormat } from './params.ts';

export const result = z.object({
  job_type: z.literal('export_vector'),
  table: z.string(),
  format: z.enum(['gpkg', 'fgb', 'geojson']),
  container: z.string(),
  blob: z.string(),
  /** The blob's stable URL (never a SAS). */
  url: z.string(),
  bytes: z.int().nonnegative(),
  rows: z.int().nonnegative(),
  chunks: z.int().positive(),
  bbox: z.array(z.number()).nullable(),
  stac_collection: z.string(),
  stac_item_id: z.string(),
});

/**
 * export_vector: a PostGIS table (or the rows matching a bbox and attribute conditions) to one
 * GeoPackage, FlatGeobuf or GeoJSON file in blob storage, in three stages: plan (key ranges of
 * `chunk_size` rows), export_chunk (one GeoPackage part per range, in parallel), assemble (the
 * parts in key order into the output, uploaded, with a STAC item for it).
 */
export default defineJob({
  type: 'export_vector',
  version: '1.0.0',
  description: 'Export a PostGIS table (or a bbox/filter of it) to GeoPackage, FlatGeobuf or GeoJSON in blob storage',
  parameters,
  stages: [plan, exportChunk, assemble],
  services: ['storage', 'stac'],
  result,
  aggregate: async (ctx) => {
    const [done] = outputsOf(assemble, await ctx.tasks('assemble'));
    const chunks = await ctx.tasks('export_chunk');
    if (!done) throw new Error('export_vector aggregate: assemble produced no output');
    return {
      job_type: 'export_vector' as const,
      table: `${ctx.params.schema}.${ctx.params.table_name}`,
      format: ctx.params.format,
      container: ctx.params.container_name,
      blob: outputBlob(ctx.params),
      url: done.output.url,
      bytes: done.output.bytes,
      rows: done.output.rows,
      chunks: chunks.length,
      bbox: done.output.bbox,
      stac_collection: ctx.params.stac_collection,
      stac_item_id: done.output.item_id,
    };
  },
  queue: { batchSize: 1, concurrency: 2 },
});
