import { defineJob } from '@coremachine/core-machine';
import '@coremachine/storage';
import { aggregate, result } from './aggregate.ts';
import { analyzeBlobs } from './analyze-blobs.ts';
import { listBlobs } from './list-blobs.ts';
import { parameters } from './parameters.ts';

/**
 * list_container_contents: a per-blob inventory of a container. Stage `list_blobs` records
 * every blob with the properties its listing returned (split by virtual directory, streamed
 * into a database table through COPY); stage `analyze_blobs` runs only with `verify_blobs` and
 * then reads each blob's own properties in batches. The table stays queryable after the job.
 */
export default defineJob({
  type: 'list_container_contents',
  version: '1.1.0',
  description:
    'Per-blob inventory of a container (size, extension, content type, last modified, etag, metadata, tags) in a queryable table',
  parameters,
  stages: [listBlobs, analyzeBlobs],
  result,
  aggregate,
  queue: { concurrency: 4 },
});

export { parameters, listBlobs, analyzeBlobs, result };
export { INVENTORY_TABLE, INVENTORY_SCHEMA } from './inventory.ts';
export { MAX_FILE_LIMIT, type Params, type ParamsInput } from './parameters.ts';
