import { defineJob } from '@coremachine/core-machine';
import { z } from 'zod';
import { catalogOutput, catalogTable } from './catalog-table.ts';
import { parameters } from './parameters.ts';

export const result = z.object({
  job_type: z.literal('stac_catalog_vectors'),
  schema: z.string(),
  table_name: z.string(),
  collection_id: z.string(),
  summary: catalogOutput.extend({ updated: z.boolean() }),
  stages_completed: z.number().int(),
  total_tasks_executed: z.number().int(),
});

/**
 * stac_catalog_vectors: one PostGIS table becomes one STAC item of a collection (default
 * `vectors`), linked to its OGC API Features collection when the server publishes it.
 */
export default defineJob({
  type: 'stac_catalog_vectors',
  version: '1.0.0',
  description: 'Catalogues one PostGIS table as a validated STAC item (bbox in WGS84, row count, geometry types, SRID)',
  parameters,
  stages: [catalogTable],
  services: ['stac'],
  result,
  aggregate: async (ctx) => {
    const [task] = await ctx.tasks('catalog_table');
    const out = catalogOutput.parse(task?.output);
    return {
      job_type: 'stac_catalog_vectors' as const,
      schema: ctx.params.schema,
      table_name: ctx.params.table_name,
      collection_id: ctx.params.collection_id,
      summary: { ...out, updated: !out.inserted },
      stages_completed: ctx.stages.filter((s) => s.status === 'completed').length,
      total_tasks_executed: 1,
    };
  },
});

export { parameters, catalogTable };
