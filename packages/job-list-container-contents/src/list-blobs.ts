import { defineStage, permanentError } from '@coremachine/core-machine';
import { compileBlobFilter, isStorageError, type BlobInfo } from '@coremachine/storage';
import { z } from 'zod';
import { copyListed, ensureInventory, INVENTORY_TABLE } from './inventory.ts';
import type { Params } from './parameters.ts';
import { splitListing } from './split-listing.ts';

/**
 * Blobs per List Blobs request. Smaller than the service's 5,000 so that fewer records are
 * alive (the page being parsed, the one ahead, the one being copied) at each young-generation
 * collection, which keeps the worker's heap from growing with the listing.
 */
export const LISTING_PAGE_SIZE = 1000;

export const listOutput = z.object({
  /** Blobs returned by the listing (under the prefix). */
  blobs_listed: z.number().int(),
  /** Blobs the filter left out. */
  blobs_filtered: z.number().int(),
  /** Blobs recorded in the inventory for analysis (after filter and file_limit). */
  total_count: z.number().int(),
  hit_file_limit: z.boolean(),
  batch_size: z.number().int(),
  /** Stage-2 batches (`verify_blobs` only, else 0); ids 0 .. batch_count-1 (keys `batch-000000`, ...). */
  batch_count: z.number().int(),
  /** Virtual directories listed on their own (0: one listing). */
  prefixes_listed: z.number().int().optional(),
  scan_duration_seconds: z.number(),
});

/**
 * Stage 1: one task records the inventory from the listing itself: the listing's pages carry
 * size, content type, last modified, ETag and metadata (and tags with `include_tags`), so
 * nothing is requested per blob. One flat listing, the next page fetched while the current one
 * is recorded; with `split_by_directory`, each virtual directory listed on its own, a few at a
 * time (`splitListing`). Pages are filtered, cut at `file_limit` and
 * streamed into the inventory table through one COPY as they arrive, in one transaction (a
 * retry replaces the rows whole). Only counts go into the task output.
 */
export const listBlobs = defineStage<Params>()({
  name: 'list_blobs',
  description:
    'One task: list the container (with split_by_directory, one listing per virtual directory, a few at a time), filter, apply file_limit, and stream each blob with the properties its listing returned into the inventory table (COPY); nothing is requested per blob',
  input: z.object({ container_name: z.string() }),
  output: listOutput,
  plan: ({ params }) => [{ key: 'list', input: { container_name: params.container_name } }],
  handler: async (input, ctx) => {
    const started = performance.now();
    const { filter, file_limit: limit, batch_size: batchSize } = ctx.params;
    const matches = compileBlobFilter(filter);
    await ensureInventory(ctx.db);
    let listed = 0,
      filtered = 0,
      kept = 0,
      hitLimit = false;
    const stats = { prefixes: 0 };
    async function* recorded(): AsyncGenerator<BlobInfo[]> {
      const pages = splitListing(
        ctx.services.storage,
        input.container_name,
        {
          prefix: filter?.prefix,
          split: ctx.params.split_by_directory === true,
          includeMetadata: true,
          includeTags: ctx.params.include_tags === true,
          pageSize: LISTING_PAGE_SIZE,
          signal: ctx.signal,
        },
        stats,
      );
      for await (const page of pages) {
        const keep: BlobInfo[] = [];
        for (const blob of page) {
          if (limit !== null && kept >= limit) {
            hitLimit = true;
            break;
          }
          listed += 1;
          if (!matches(blob)) {
            filtered += 1;
            continue;
          }
          keep.push(blob);
          kept += 1;
        }
        if (keep.length > 0) yield keep;
        // Without a limit the total is unknown until the listing ends.
        ctx.progress(limit ? kept / limit : 0, `${kept} blobs recorded, ${listed} listed`);
        if (hitLimit) return;
      }
    }
    const client = await ctx.db.connect();
    try {
      await client.query('BEGIN');
      await client.query(`DELETE FROM ${INVENTORY_TABLE} WHERE job_id = $1`, [ctx.jobId]);
      try {
        await copyListed(client, ctx.jobId, input.container_name, recorded());
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
      await client.query('COMMIT');
    } catch (err) {
      await client.query('ROLLBACK').catch(() => {});
      throw err;
    } finally {
      client.release();
    }
    return {
      blobs_listed: listed,
      blobs_filtered: filtered,
      total_count: kept,
      hit_file_limit: hitLimit,
      batch_size: batchSize,
      batch_count: ctx.params.verify_blobs === true ? Math.ceil(kept / batchSize) : 0,
      prefixes_listed: stats.prefixes,
      scan_duration_seconds: Math.round(performance.now() - started) / 1000,
    };
  },
});
