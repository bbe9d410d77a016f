import { blobFilterSchema, containerNameSchema } from '@coremachine/storage';
import { z } from 'zod';

export const MAX_FILE_LIMIT = 100_000;

/** list_container_contents parameters. */
export const parameters = z.strictObject({
  container_name: containerNameSchema,
  /** At most this many blobs (counted after filtering); null = all. */
  file_limit: z
    .number()
    .int()
    .min(1)
    .max(MAX_FILE_LIMIT)
    .nullish()
    .transform((v) => v ?? null),
  filter: blobFilterSchema.optional(),
  /** Blobs analysed per stage-2 task. */
  batch_size: z.number().int().min(1).max(5000).default(500),
});

export type Params = z.output<typeof parameters>;
export type ParamsInput = z.input<typeof parameters>;
