import { setTimeout as sleep } from 'node:timers/promises';
import { z } from 'zod';
import { httpStatusOf, redactSecrets, StorageError } from './errors.ts';

/**
 * Time budgets of every storage call. A call is one logical operation (a stat, one listing page,
 * a download, an upload); each of its HTTP attempts gets `requestTimeoutMs` without an answer (or,
 * for transfers, without progress), and all attempts together with their backoff get
 * `totalTimeoutMs` (for transfers: counted from the last progress). Timeouts, network errors,
 * 408, 429 and 5xx are retried with exponential backoff and jitter (a `Retry-After` header is
 * honoured within the budget); once the budget or `maxAttempts` is spent the call fails with
 * `STORAGE_TIMEOUT` (the last attempt timed out) or `STORAGE_UNAVAILABLE`, both transient, so
 * the engine retries the task by its stage's policy.
 */
export const storageBudgetSchema = z.object({
  requestTimeoutMs: z.number().int().min(100).default(30_000),
  totalTimeoutMs: z.number().int().min(100).default(120_000),
  maxAttempts: z.number().int().min(1).max(20).default(5),
  retryBaseDelayMs: z.number().int().min(0).default(500),
  retryMaxDelayMs: z.number().int().min(0).default(10_000),
});
export type StorageBudget = z.output<typeof storageBudgetSchema>;
export type StorageBudgetInput = z.input<typeof storageBudgetSchema>;

export const DEFAULT_STORAGE_BUDGET: StorageBudget = storageBudgetSchema.parse({});

const RETRY_STATUS = new Set([408, 429, 500, 502, 503, 504]);
const NETWORK_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ECONNABORTED',
  'ETIMEDOUT',
  'ESOCKETTIMEDOUT',
  'EPIPE',
  'ENOTFOUND',
  'EAI_AGAIN',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'REQUEST_SEND_ERROR',
  'UND_ERR_SOCKET',
]);

/** Whether an attempt's failure may go away on its own (a retry can help). */
export function isRetryableFailure(err: unknown): boolean {
  // Our own coded errors (a nested call's spent budget included) are final.
  if (err instanceof StorageError) return false;
  const status = httpStatusOf(err);
  if (status !== undefined) return RETRY_STATUS.has(status);
  const code = (err as { code?: unknown } | null)?.code;
  if (typeof code === 'string' && NETWORK_CODES.has(code)) return true;
  // The SDK's RestError without a status: the request never got an answer.
  return (err as Error | null)?.name === 'RestError';
}

/** The delay before attempt `attempt + 1`: exponential with jitter, or the server's Retry-After. */
export function retryDelayMs(budget: StorageBudget, attempt: number, err: unknown): number {
  const retryAfter = retryAfterMs(err);
  if (retryAfter !== undefined) return Math.min(retryAfter, budget.retryMaxDelayMs);
  const exp = Math.min(budget.retryMaxDelayMs, budget.retryBaseDelayMs * 2 ** (attempt - 1));
  return Math.round(exp * (0.5 + Math.random() * 0.5));
}

function retryAfterMs(err: unknown): number | undefined {
  const headers = (err as { response?: { headers?: { get?: (n: string) => string | undefined } } } | null)?.response
    ?.headers;
  const value = typeof headers?.get === 'function' ? headers.get('retry-after') : undefined;
  if (!value) return undefined;
  const seconds = Number(value);
  if (Number.isFinite(seconds)) return Math.max(0, seconds * 1000);
  const at = Date.parse(value);
  return Number.isNaN(at) ? undefined : Math.max(0, at - Date.now());
}

/** What an attempt gets: its signal (the caller's, this attempt's timeout) and a progress tick. */
export interface Attempt {
  signal: AbortSignal;
  /** Bytes moved: resets this attempt's timeout and restarts the call's total budget. */
  progress(): void;
  attempt: number;
}

class AttemptTimeout extends Error {
  constructor(ms: number) {
    super(`no answer within ${ms} ms`);
    this.name = 'AttemptTimeout';
  }
}

/**
 * Runs `fn` under `budget`: retried while its failures are transient and the budget lasts.
 * The caller's abort wins (its reason is thrown as is); failures that a retry cannot help (404,
 * 403, 412, our own coded errors) are thrown unchanged on the first attempt.
 *
 * @example
 *   await withBudget(budget, 'stat bronze/x.tif', signal, ({ signal }) => blob.getProperties({ abortSignal: signal }));
 */
export async function withBudget<T>(
  budget: StorageBudget,
  what: string,
  callerSignal: AbortSignal | undefined,
  fn: (attempt: Attempt) => Promise<T>,
): Promise<T> {
  const started = Date.now();
  let deadline = started + budget.totalTimeoutMs;
  let last: { err: unknown; timedOut: boolean } | undefined;
  let attempts = 0;
  for (let attempt = 1; attempt <= budget.maxAttempts; attempt++) {
    callerSignal?.throwIfAborted();
    const remaining = deadline - Date.now();
    if (remaining <= 0) break;
    attempts = attempt;
    const controller = new AbortController();
    let timer: NodeJS.Timeout | undefined;
    const arm = (ms: number) => {
      clearTimeout(timer);
      timer = setTimeout(() => controller.abort(new AttemptTimeout(ms)), ms);
    };
    arm(Math.min(budget.requestTimeoutMs, remaining));
    const signal = callerSignal ? AbortSignal.any([callerSignal, controller.signal]) : controller.signal;
    try {
      return await fn({
        signal,
        attempt,
        progress: () => {
          if (controller.signal.aborted) return;
          deadline = Date.now() + budget.totalTimeoutMs;
          arm(budget.requestTimeoutMs);
        },
      });
    } catch (err) {
      if (callerSignal?.aborted) throw callerSignal.reason ?? err;
      const timedOut = controller.signal.aborted;
      if (!timedOut && !isRetryableFailure(err)) throw err;
      last = { err, timedOut };
    } finally {
      clearTimeout(timer);
    }
    if (attempt === budget.maxAttempts) break;
    const delay = retryDelayMs(budget, attempt, last.err);
    if (Date.now() + delay >= deadline) break;
    await sleep(delay, undefined, callerSignal ? { signal: callerSignal } : {}).catch(() => {
      throw callerSignal?.reason;
    });
  }
  throw budgetSpent(budget, what, attempts, Date.now() - started, last);
}

function budgetSpent(
  budget: StorageBudget,
  what: string,
  attempts: number,
  elapsedMs: number,
  last: { err: unknown; timedOut: boolean } | undefined,
): StorageError {
  const tried = `${attempts} attempt(s) in ${(elapsedMs / 1000).toFixed(1)} s`;
  if (!last || last.timedOut) {
    return new StorageError(
      'STORAGE_TIMEOUT',
      `Storage did not answer ${what} within its time budget (${budget.requestTimeoutMs} ms per request; ${tried})`,
      { cause: last?.err },
    );
  }
  const status = httpStatusOf(last.err);
  const reason = status !== undefined ? `HTTP ${status}` : redactSecrets((last.err as Error)?.message ?? 'error');
  return new StorageError('STORAGE_UNAVAILABLE', `Storage failed ${what} (${reason}; ${tried})`, {
    cause: last.err,
    ...(status !== undefined ? { statusCode: status } : {}),
  });
}
