import { defineStage, permanentError } from '@coremachine/core-machine';
import { compileBlobFilter, isStorageError } from '@coremachine/storage';
import { z } from 'zod';
import { ensureInventory, insertListed, INVENTORY_TABLE, type ListedRow } from './inventory.ts';
import type { Params } from './parameters.ts';

const INSERT_CHUNK = 2_000;

export const listOutput = z.object({
  /** Blobs returned by the listing (under the prefix). */
  blobs_listed: z.number().int(),
  /** Blobs the filter left out. */
  blobs_filtered: z.number().int(),
  /** Blobs recorded in the inventory for analysis (after filter and file_limit). */
  total_count: z.number().int(),
  hit_file_limit: z.boolean(),
  batch_size: z.number().int(),
  /** Stage-2 batches; their ids are 0 .. batch_count-1 (task keys `batch-000000`, ...). */
  batch_count: z.number().int(),
  scan_duration_seconds: z.number(),
});

/**
 * Stage 1: one task streams the listing, applies the filter then `file_limit`, and writes the
 * names to the inventory table in chunks. Only counts go into the task output: 100,000 names
 * would not belong in a task result or a queue message.
 */
export const listBlobs = defineStage<Params>()({
  name: 'list_blobs',
  description: 'One task: stream the listing, filter, apply file_limit, write names to the inventory table',
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
    const client = await ctx.db.connect();
    try {
      // One transaction: a retry (or a re-run after a lost lease) replaces the rows whole.
      await client.query('BEGIN');
      await client.query(`DELETE FROM ${INVENTORY_TABLE} WHERE job_id = $1`, [ctx.jobId]);
      let chunk: ListedRow[] = [];
      try {
        for await (const blob of ctx.services.storage.list(input.container_name, {
          prefix: filter?.prefix,
          signal: ctx.signal,
        })) {
          if (limit !== null && kept >= limit) {
            hitLimit = true;
            break;
          }
          listed += 1;
          if (!matches(blob)) {
            filtered += 1;
            continue;
          }
          chunk.push({ name: blob.name, size: blob.size });
          kept += 1;
          if (chunk.length >= INSERT_CHUNK) {
            await insertListed(client, ctx.jobId, input.container_name, kept - chunk.length, chunk);
            chunk = [];
            // Without a limit the total is unknown until the listing ends.
            ctx.progress(limit ? kept / limit : 0, `${kept} blobs recorded, ${listed} listed`);
          }
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
      await insertListed(client, ctx.jobId, input.container_name, kept - chunk.length, chunk);
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
      batch_count: Math.ceil(kept / batchSize),
      scan_duration_seconds: Math.round(performance.now() - started) / 1000,
    };
  },
});
