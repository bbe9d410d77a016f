import { defineStage, permanentError } from '@coremachine/core-machine';
import { compileBlobFilter, isStorageError } from '@coremachine/storage';
import { z } from 'zod';
import { foldGeodatabases } from './entries.ts';
import type { Params } from './parameters.ts';
import { statisticsSchema, SummaryAccumulator } from './statistics.ts';

export const executionInfoSchema = z.object({
  /** Blobs returned by the listing (a geodatabase's files each count here). */
  blobs_listed: z.number().int(),
  /** Files examined after folding geodatabases. */
  files_scanned: z.number().int(),
  /** Files examined but left out by the filter. */
  files_filtered: z.number().int(),
  scan_duration_seconds: z.number(),
  /** True when the scan stopped at `file_limit` with part of the listing left unexamined. */
  hit_file_limit: z.boolean(),
});

export const analyzeOutput = z.object({
  container_name: z.string(),
  analysis_timestamp: z.string(),
  statistics: statisticsSchema,
  execution_info: executionInfoSchema,
});
export type AnalyzeOutput = z.output<typeof analyzeOutput>;

/**
 * The only stage: one task streams the listing (never the whole container in memory), folds
 * `.gdb` folders, filters, and accumulates the statistics.
 */
export const analyzeContainer = defineStage<Params>()({
  name: 'analyze_container',
  description: 'One task: stream the container listing, fold .gdb folders, filter, accumulate statistics',
  input: z.object({ container_name: z.string() }),
  output: analyzeOutput,
  plan: ({ params }) => [{ key: 'summary', input: { container_name: params.container_name } }],
  handler: async (input, ctx) => {
    const started = performance.now();
    const { filter, file_limit: limit } = ctx.params;
    const matches = compileBlobFilter(filter);
    const stats = new SummaryAccumulator();
    let blobsListed = 0,
      scanned = 0,
      filtered = 0,
      hitLimit = false;
    const blobs = ctx.services.storage.list(input.container_name, { prefix: filter?.prefix, signal: ctx.signal });
    try {
      for await (const entry of foldGeodatabases(blobs, () => {
        blobsListed += 1;
      })) {
        if (limit !== null && stats.files >= limit) {
          hitLimit = true;
          break;
        }
        scanned += 1;
        if (matches(entry)) stats.add(entry);
        else filtered += 1;
      }
    } catch (err) {
      if (isStorageError(err, 'CONTAINER_NOT_FOUND')) {
        throw permanentError(
          'CONTAINER_NOT_FOUND',
          `Container ${JSON.stringify(input.container_name)} does not exist`,
          { container_name: input.container_name },
        );
      }
      throw err;
    }
    return {
      container_name: input.container_name,
      analysis_timestamp: new Date().toISOString(),
      statistics: stats.result(),
      execution_info: {
        blobs_listed: blobsListed,
        files_scanned: scanned,
        files_filtered: filtered,
        scan_duration_seconds: Math.round(performance.now() - started) / 1000,
        hit_file_limit: hitLimit,
      },
    };
  },
});
