import { defineStage } from '@coremachine/core-machine';
import {
  blobExtension,
  httpStatusOf,
  isStorageError,
  isTransientStorageError,
  NO_EXTENSION,
  type BlobStorage,
} from '@coremachine/storage';
import { z } from 'zod';
import { ensureInventory, INVENTORY_TABLE, recordAnalysed, type AnalysedRow } from './inventory.ts';
import type { Params } from './parameters.ts';

/** Property requests in flight per task. */
export const BLOB_CONCURRENCY = 16;
/** Runs per batch task; on the last one, blobs that still fail are recorded, not retried. */
export const BATCH_MAX_ATTEMPTS = 3;

const blobError = z.object({ blob_name: z.string(), code: z.string(), message: z.string() });

export const analyzeOutput = z.object({
  batch: z.number().int(),
  blobs: z.number().int(),
  analyzed: z.number().int(),
  failed: z.number().int(),
  total_size_bytes: z.number(),
  /** At most 5 per batch. */
  errors: z.array(blobError),
});

export const batchKey = (batch: number) => `batch-${String(batch).padStart(6, '0')}`;

/** Runs `fn` over `items` with at most `limit` in flight; results in input order. */
async function mapBounded<T, R>(items: T[], limit: number, fn: (item: T) => Promise<R>): Promise<R[]> {
  const out = new Array<R>(items.length);
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const i = next++;
      out[i] = await fn(items[i]!);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  return out;
}

type Outcome = { row: AnalysedRow; name: string; transient: boolean };

async function analyse(
  storage: BlobStorage,
  container: string,
  ordinal: number,
  name: string,
  signal: AbortSignal,
): Promise<Outcome> {
  const failed = (code: string, message: string, transient: boolean): Outcome => ({
    name,
    transient,
    row: {
      ordinal,
      size: null,
      extension: null,
      contentType: null,
      lastModified: null,
      etag: null,
      metadata: null,
      errorCode: code,
      errorMessage: message,
    },
  });
  try {
    const s = await storage.stat(container, name, { signal });
    if (!s.exists) return failed('BLOB_NOT_FOUND', `${container}/${name} no longer exists`, false);
    return {
      name,
      transient: false,
      row: {
        ordinal,
        size: s.size,
        extension: blobExtension(name) || NO_EXTENSION,
        contentType: s.contentType,
        lastModified: s.lastModified.toISOString(),
        etag: s.etag,
        metadata: s.metadata ?? {},
        errorCode: null,
        errorMessage: null,
      },
    };
  } catch (err) {
    if (isStorageError(err)) return failed(err.code, err.message, isTransientStorageError(err));
    const status = httpStatusOf(err);
    return failed(
      status ? `HTTP_${status}` : 'BLOB_PROPERTIES_FAILED',
      (err as Error).message,
      isTransientStorageError(err),
    );
  }
}

/**
 * Stage 2, only with `verify_blobs` (otherwise it plans no task: stage 1 already recorded every
 * blob from its listing): the inventory split into batches of `batch_size` rows; each task reads its rows
 * from the table (never from queue messages or the previous stage's output), fetches each
 * blob's properties with bounded concurrency and writes them back to the same rows.
 *
 * A blob that vanished is recorded as a per-blob error (`BLOB_NOT_FOUND`), not a task failure.
 * Transient errors retry the batch; on its last attempt the blobs still failing are recorded
 * with their error and the batch completes. `onTaskFailure: 'continue'`: a batch that fails
 * anyway (e.g. the database is unreachable throughout) does not lose the other batches; the
 * job ends `completed_with_errors` and its blobs count as failed analyses.
 */
export const analyzeBlobs = defineStage<Params>()({
  name: 'analyze_blobs',
  description:
    "Only with verify_blobs (no task otherwise): batches of batch_size inventory rows; fetch each blob's own properties (bounded concurrency) and record them over the listed ones",
  input: z.object({ batch: z.number().int(), first_ordinal: z.number().int(), end_ordinal: z.number().int() }),
  output: analyzeOutput,
  onTaskFailure: 'continue',
  retry: { maxAttempts: BATCH_MAX_ATTEMPTS },
  plan: async ({ jobId, params, db }) => {
    if (params.verify_blobs !== true) return [];
    await ensureInventory(db);
    const {
      rows: [r],
    } = await db.query<{ n: number }>(`SELECT count(*)::int AS n FROM ${INVENTORY_TABLE} WHERE job_id = $1`, [jobId]);
    const total = r?.n ?? 0;
    const size = params.batch_size;
    return Array.from({ length: Math.ceil(total / size) }, (_, b) => ({
      key: batchKey(b),
      input: { batch: b, first_ordinal: b * size, end_ordinal: Math.min(total, (b + 1) * size) },
    }));
  },
  handler: async (input, ctx) => {
    const { rows } = await ctx.db.query<{ ordinal: number; blob_name: string; container_name: string }>(
      `SELECT ordinal, blob_name, container_name FROM ${INVENTORY_TABLE} WHERE job_id = $1 AND ordinal >= $2 AND ordinal < $3 ORDER BY ordinal`,
      [ctx.jobId, input.first_ordinal, input.end_ordinal],
    );
    const outcomes = await mapBounded(rows, BLOB_CONCURRENCY, (r) =>
      analyse(ctx.services.storage, r.container_name, r.ordinal, r.blob_name, ctx.signal),
    );
    const transient = outcomes.filter((o) => o.transient);
    if (transient.length > 0 && ctx.attempt < BATCH_MAX_ATTEMPTS) {
      throw new Error(
        `${transient.length} of ${rows.length} blobs failed transiently in batch ${input.batch} (first: ${transient[0]!.name}: ${transient[0]!.row.errorMessage})`,
      );
    }
    await recordAnalysed(
      ctx.db,
      ctx.jobId,
      outcomes.map((o) => o.row),
    );
    const errors = outcomes.filter((o) => o.row.errorCode);
    return {
      batch: input.batch,
      blobs: rows.length,
      analyzed: rows.length - errors.length,
      failed: errors.length,
      total_size_bytes: outcomes.reduce((s, o) => s + (o.row.size ?? 0), 0),
      errors: errors
        .slice(0, 5)
        .map((o) => ({ blob_name: o.name, code: o.row.errorCode!, message: o.row.errorMessage! })),
    };
  },
});
