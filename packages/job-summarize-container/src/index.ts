import { defineJob } from '@coremachine/core-machine';
import '@coremachine/storage';
import { blobFilterSchema } from '@coremachine/storage';
import { z } from 'zod';
import { analyzeContainer, analyzeOutput, executionInfoSchema } from './analyze-container.ts';
import { parameters } from './parameters.ts';
import { statisticsSchema } from './statistics.ts';

export const result = z.object({
  job_type: z.literal('summarize_container'),
  container_name: z.string(),
  file_limit: z.number().int().nullable(),
  /** The filter as applied (normalised: lower-case dotted extensions, UTC instants). */
  filter: blobFilterSchema.nullable(),
  analysis_timestamp: z.string(),
  summary: statisticsSchema,
  execution_info: executionInfoSchema,
  stages_completed: z.number().int(),
  total_tasks_executed: z.number().int(),
});

/**
 * summarize_container: statistics of a container's files (counts, sizes, types, size buckets,
 * date range) in one streaming pass, with Esri `.gdb` folders counted as one file each.
 */
export default defineJob({
  type: 'summarize_container',
  version: '1.0.0',
  description:
    'Statistics of a blob container (optionally filtered): counts, sizes, file types, size buckets, date range',
  parameters,
  stages: [analyzeContainer],
  services: ['storage'],
  result,
  aggregate: async (ctx) => {
    const tasks = await ctx.tasks('analyze_container');
    const done = tasks.find((t) => t.status === 'completed');
    if (!done)
      throw new Error(
        `analyze_container has no completed task (statuses: ${tasks.map((t) => t.status).join(', ') || 'none'})`,
      );
    const out = analyzeOutput.parse(done.output);
    return {
      job_type: 'summarize_container' as const,
      container_name: out.container_name,
      file_limit: ctx.params.file_limit,
      filter: ctx.params.filter ?? null,
      analysis_timestamp: out.analysis_timestamp,
      summary: out.statistics,
      execution_info: out.execution_info,
      stages_completed: ctx.stages.filter((s) => s.status === 'completed').length,
      total_tasks_executed: tasks.length,
    };
  },
});

export { parameters, analyzeContainer };
export { sizeBucket, SIZE_BUCKETS, SummaryAccumulator } from './statistics.ts';
export { foldGeodatabases, gdbFolderOf } from './entries.ts';
export type { Params, ParamsInput } from './parameters.ts';
