import type { AggregateContext } from '@coremachine/core-machine';
import { blobFilterSchema } from '@coremachine/storage';
import { z } from 'zod';
import { analyzeOutput } from './analyze-blobs.ts';
import { INVENTORY_TABLE } from './inventory.ts';
import { listOutput } from './list-blobs.ts';
import type { Params } from './parameters.ts';

const MiB = 1024 * 1024;
const GiB = 1024 * MiB;

export const result = z.object({
  job_type: z.literal('list_container_contents'),
  container_name: z.string(),
  file_limit: z.number().int().nullable(),
  filter: blobFilterSchema.nullable(),
  batch_size: z.number().int(),
  summary: z.object({
    total_blobs_found: z.number().int(),
    blobs_analyzed: z.number().int(),
    successful_analyses: z.number().int(),
    /** Blobs whose analysis recorded an error, plus blobs of batches that failed for good. */
    failed_analyses: z.number().int(),
    /** Percentage of found blobs analysed successfully, one decimal (100 when none found). */
    success_rate: z.number(),
    total_size_bytes: z.number(),
    total_size_mb: z.number(),
    total_size_gb: z.number(),
    /** Count by lower-case extension with its dot; `no_extension` when the name has none. */
    file_types: z.record(z.string(), z.number().int()),
    unique_extensions: z.number().int(),
    largest_file: z.object({ name: z.string(), size_bytes: z.number(), size_mb: z.number() }).nullable(),
    errors_sample: z
      .array(z.object({ blob_name: z.string().nullable(), code: z.string(), message: z.string() }))
      .max(5),
  }),
  listing: listOutput.omit({ batch_size: true }),
  /** Where the per-blob rows are: `SELECT * FROM <table> WHERE job_id = '<job id>'`. */
  inventory: z.object({ table: z.string(), job_id: z.string() }),
  stages_completed: z.number().int(),
  total_tasks_executed: z.number().int(),
  tasks_by_status: z.object({ completed: z.number().int(), failed: z.number().int() }),
});

const round = (n: number, dp: number) => Math.round(n * 10 ** dp) / 10 ** dp;

/** Totals come from the inventory rows (exact, however many batches), not from task outputs. */
export async function aggregate(ctx: AggregateContext<Params>): Promise<z.input<typeof result>> {
  const listTasks = await ctx.tasks('list_blobs');
  const batches = await ctx.tasks('analyze_blobs');
  const listing = listOutput.parse(listTasks.find((t) => t.status === 'completed')?.output);
  const q = async <R extends Record<string, unknown>>(sql: string) => (await ctx.db.query<R>(sql, [ctx.jobId])).rows;

  const [totals] = await q<{ found: number; analyzed: number; ok: number; bytes: number | null }>(
    `SELECT count(*)::int AS found, count(analyzed_at)::int AS analyzed,
            count(*) FILTER (WHERE analyzed_at IS NOT NULL AND error_code IS NULL)::int AS ok,
            sum(size_bytes) FILTER (WHERE error_code IS NULL)::bigint AS bytes
     FROM ${INVENTORY_TABLE} WHERE job_id = $1`,
  );
  const types = await q<{ ext: string; n: number }>(
    `SELECT extension AS ext, count(*)::int AS n FROM ${INVENTORY_TABLE}
     WHERE job_id = $1 AND analyzed_at IS NOT NULL AND error_code IS NULL GROUP BY extension ORDER BY extension`,
  );
  const [largest] = await q<{ blob_name: string; size_bytes: number }>(
    `SELECT blob_name, size_bytes FROM ${INVENTORY_TABLE} WHERE job_id = $1 AND error_code IS NULL AND size_bytes IS NOT NULL
     ORDER BY size_bytes DESC, ordinal LIMIT 1`,
  );
  const blobErrors = await q<{ blob_name: string; code: string; message: string }>(
    `SELECT blob_name, error_code AS code, error_message AS message FROM ${INVENTORY_TABLE}
     WHERE job_id = $1 AND error_code IS NOT NULL ORDER BY ordinal LIMIT 5`,
  );
  const failedBatches = batches.filter((t) => t.status === 'failed');
  const batchErrors = failedBatches.map((t) => ({
    blob_name: null,
    code: t.error?.code ?? 'TASK_FAILED',
    message: `${t.key}: ${t.error?.message ?? 'failed'}`,
  }));
  // Keep the per-batch outputs honest: their counts must add up to the table's.
  const analyzedByTasks = batches.reduce(
    (s, t) => s + (t.status === 'completed' ? analyzeOutput.parse(t.output).blobs : 0),
    0,
  );
  if (analyzedByTasks !== totals!.analyzed)
    ctx.log.warn('inventory and batch outputs disagree', {
      jobId: ctx.jobId,
      analyzedByTasks,
      analyzed: totals!.analyzed,
    });

  const found = totals!.found;
  const bytes = totals!.bytes ?? 0;
  return {
    job_type: 'list_container_contents' as const,
    container_name: ctx.params.container_name,
    file_limit: ctx.params.file_limit,
    filter: ctx.params.filter ?? null,
    batch_size: ctx.params.batch_size,
    summary: {
      total_blobs_found: found,
      blobs_analyzed: totals!.analyzed,
      successful_analyses: totals!.ok,
      failed_analyses: found - totals!.ok,
      success_rate: found === 0 ? 100 : round((totals!.ok / found) * 100, 1),
      total_size_bytes: bytes,
      total_size_mb: round(bytes / MiB, 4),
      total_size_gb: round(bytes / GiB, 6),
      file_types: Object.fromEntries(types.map((t) => [t.ext, t.n])),
      unique_extensions: types.length,
      largest_file: largest
        ? { name: largest.blob_name, size_bytes: largest.size_bytes, size_mb: round(largest.size_bytes / MiB, 4) }
        : null,
      errors_sample: [...batchErrors, ...blobErrors].slice(0, 5),
    },
    listing: {
      blobs_listed: listing.blobs_listed,
      blobs_filtered: listing.blobs_filtered,
      total_count: listing.total_count,
      hit_file_limit: listing.hit_file_limit,
      batch_count: listing.batch_count,
      prefixes_listed: listing.prefixes_listed ?? 0,
      scan_duration_seconds: listing.scan_duration_seconds,
    },
    inventory: { table: INVENTORY_TABLE, job_id: ctx.jobId },
    stages_completed: ctx.stages.filter((s) => s.status === 'completed').length,
    total_tasks_executed: listTasks.length + batches.length,
    tasks_by_status: {
      completed: [...listTasks, ...batches].filter((t) => t.status === 'completed').length,
      failed: [...listTasks, ...batches].filter((t) => t.status === 'failed').length,
    },
  };
}
