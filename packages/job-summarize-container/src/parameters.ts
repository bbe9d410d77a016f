import { blobFilterSchema, containerNameSchema } from '@coremachine/storage';
import { z } from 'zod';

/**
 * summarize_container parameters. The container's existence is checked by the task, not at
 * submit (a missing container fails the job with CONTAINER_NOT_FOUND).
 */
export const parameters = z.strictObject({
  container_name: containerNameSchema.describe('Container to summarise (trimmed; Azure rules: 3-63 chars, `a-z0-9-`)'),
  file_limit: z
    .number()
    .int()
    .min(1)
    .nullish()
    .transform((v) => v ?? null)
    .describe('Stop after this many files that passed the filter; null or omitted: the whole container'),
  filter: blobFilterSchema.optional().describe('Which blobs count (all criteria must hold)'),
});

export type Params = z.output<typeof parameters>;
export type ParamsInput = z.input<typeof parameters>;
