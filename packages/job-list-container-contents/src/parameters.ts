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
  include_tags: z
    .boolean()
    .optional()
    .describe("Also record each blob's index tags (from the listing: no request per blob); omitted: false"),
  split_by_directory: z
    .boolean()
    .optional()
    .describe(
      'One listing per top-level virtual directory, 4 at a time, instead of one flat listing (for Azure Storage containers with several large directories; slower on Azurite); omitted: false',
    ),
  verify_blobs: z
    .boolean()
    .optional()
    .describe(
      "After the listing, read each blob's own properties (one request per blob, in `analyze_blobs` batches) to confirm it still exists; omitted: false, the listing's properties are recorded as they are",
    ),
  batch_size: z
    .number()
    .int()
    .min(1)
    .max(5000)
    .default(500)
    .describe('Blobs per `analyze_blobs` task (with verify_blobs)'),
});

export type Params = z.output<typeof parameters>;
export type ParamsInput = z.input<typeof parameters>;
