import { defineJob } from '@coremachine/core-machine';
import { z } from 'zod';
import { batchFailureDetail, catalogRasters, type BlobFailure } from './catalog-rasters.ts';
import { listOutput, listRasters } from './list-rasters.ts';
import { batchSizeFor, parameters } from './parameters.ts';

export const result = z.object({
  job_type: z.literal('stac_catalog_container'),
  collection_id: z.string(),
  container_name: z.string(),
  prefix: z.string(),
  extensions: z.array(z.string()),
  summary: z.object({
    total_files_found: z.number().int(),
    files_processed: z.number().int(),
    inserted: z.number().int(),
    updated: z.number().int(),
    failed: z.number().int(),
    /** Catalogued / found, 0..1 (0 when nothing was found). */
    success_rate: z.number(),
  }),
  /** Up to 50 rasters that could not be catalogued, with the reason. */
  failures: z.array(z.object({ blob: z.string(), code: z.string(), message: z.string() })),
  scan: z.object({
    total_blobs_scanned: z.number().int(),
    limit_applied: z.boolean(),
    scan_duration_seconds: z.number(),
  }),
  stages_completed: z.number().int(),
  total_tasks_executed: z.number().int(),
  tasks_by_status: z.object({ completed: z.number().int(), failed: z.number().int() }),
});

/**
 * stac_catalog_container: catalogues every raster of a container (under a prefix) as STAC
 * items of a collection, in place: no copy, hrefs are stable blob URLs.
 */
export default defineJob({
  type: 'stac_catalog_container',
  version: '1.0.0',
  description: 'Lists the rasters of a container and upserts one validated STAC item per raster into a collection',
  parameters,
  stages: [listRasters, catalogRasters],
  services: ['storage', 'stac'],
  result,
  aggregate: async (ctx) => {
    const listed = (await ctx.tasks('list_rasters'))[0];
    const list = listed?.output
      ? listOutput.parse(listed.output)
      : { blobs: [], total_blobs_scanned: 0, rasters_found: 0, limit_applied: false, scan_duration_seconds: 0 };
    const batches = await ctx.tasks('catalog_rasters');
    let inserted = 0,
      updated = 0;
    const failures: BlobFailure[] = [];
    for (const t of batches) {
      if (t.status === 'completed' && t.output) {
        const o = t.output as { inserted: number; updated: number };
        inserted += o.inserted;
        updated += o.updated;
        continue;
      }
      const detail = batchFailureDetail.safeParse(t.error?.detail);
      if (detail.success) {
        inserted += detail.data.inserted;
        updated += detail.data.updated;
        failures.push(...detail.data.failed);
      } else {
        // A batch that failed for another reason (retries exhausted): all its rasters count as failed.
        // Its rasters are found again from the batch number in its key.
        const n = Number(t.key.replace('batch-', ''));
        const size = batchSizeFor(ctx.params.batch_size, list.blobs.length);
        const blobs = list.blobs.slice(n * size, (n + 1) * size).map((b) => b.name);
        failures.push(
          ...(blobs.length ? blobs : [t.key]).map((blob) => ({
            blob,
            code: t.error?.code ?? 'TASK_FAILED',
            message: t.error?.message ?? 'task failed',
          })),
        );
      }
    }
    const found = list.rasters_found;
    const ok = inserted + updated;
    return {
      job_type: 'stac_catalog_container' as const,
      collection_id: ctx.params.collection_id,
      container_name: ctx.params.container_name,
      prefix: ctx.params.prefix,
      extensions: ctx.params.extensions,
      summary: {
        total_files_found: found,
        files_processed: ok + failures.length,
        inserted,
        updated,
        failed: failures.length,
        success_rate: found ? Math.round((ok / found) * 1e4) / 1e4 : 0,
      },
      failures: failures.slice(0, 50).map(({ blob, code, message }) => ({ blob, code, message })),
      scan: {
        total_blobs_scanned: list.total_blobs_scanned,
        limit_applied: list.limit_applied,
        scan_duration_seconds: list.scan_duration_seconds,
      },
      stages_completed: ctx.stages.filter((s) => s.status === 'completed').length,
      total_tasks_executed: (listed ? 1 : 0) + batches.length,
      tasks_by_status: {
        completed: batches.filter((t) => t.status === 'completed').length + (listed?.status === 'completed' ? 1 : 0),
        failed: batches.filter((t) => t.status === 'failed').length + (listed?.status === 'failed' ? 1 : 0),
      },
    };
  },
  queue: { concurrency: 4 },
});

export { parameters, listRasters, catalogRasters };
