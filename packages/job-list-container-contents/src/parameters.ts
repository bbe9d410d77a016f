import { blobFilterSchema, containerNameSchema } from '@coremachine/storage';
import { z } from 'zod';

export const MAX_FILE_LIMIT = 100_000;

/** list_container_contents parameters. */
export const parameters = z.strictObject({
  container_name: containerNameSchema.describe('Container to inventory (trimmed; Azure container rules)'),
  file_limit: z
    .number()
    .int()
    .min(1)
    .max(MAX_FILE_LIMIT)
    .nullish()
    .transform((v) => v ?? null)
    .describe('At most this many blobs, counted after the filter; null or omitted: all'),
  filter: blobFilterSchema.optional().describe('Which blobs are inventoried (same filter as summarize_container)'),
  batch_size: z.number().int().min(1).max(5000).default(500).describe('Blobs per `analyze_blobs` task'),
});

export type Params = z.output<typeof parameters>;
export type ParamsInput = z.input<typeof parameters>;
