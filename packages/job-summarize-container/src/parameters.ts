import { blobFilterSchema, containerNameSchema } from '@coremachine/storage';
import { z } from 'zod';

/**
 * summarize_container parameters. The container's existence is checked by the task, not at
 * submit (a missing container fails the job with CONTAINER_NOT_FOUND).
 */
export const parameters = z.strictObject({
  container_name: containerNameSchema,
  /** Stop after this many files (after filtering); omit for the whole container. */
  file_limit: z
    .number()
    .int()
    .min(1)
    .nullish()
    .transform((v) => v ?? null),
  filter: blobFilterSchema.optional(),
});

export type Params = z.output<typeof parameters>;
export type ParamsInput = z.input<typeof parameters>;
