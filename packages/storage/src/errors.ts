/**
 * Codes raised by the storage package. Each error says whether it is `permanent`, and the engine's
 * code table knows them, so handlers may let them through as they are.
 */
export type StorageErrorCode =
  | 'STORAGE_INVALID_NAME'
  | 'STORAGE_CONFIG_INVALID'
  | 'CONTAINER_NOT_FOUND'
  | 'BLOB_NOT_FOUND'
  | 'BLOB_CHANGED'
  | 'AZURITE_START_FAILED'
  /** A call ran out of its time budget (the endpoint did not answer): transient. */
  | 'STORAGE_TIMEOUT'
  /** A call kept failing with 5xx, throttling or network errors until its budget was spent: transient. */
  | 'STORAGE_UNAVAILABLE';

const TRANSIENT_CODES: ReadonlySet<StorageErrorCode> = new Set([
  'STORAGE_TIMEOUT',
  'STORAGE_UNAVAILABLE',
  'AZURITE_START_FAILED',
]);

/**
 * One error class for storage, with a closed code union. Messages name the offending value.
 *
 * @example
 *   try { await storage.stat('bronze', 'x.tif') } catch (e) { if (isStorageError(e, 'CONTAINER_NOT_FOUND')) ... }
 */
export class StorageError extends Error {
  readonly code: StorageErrorCode;
  /** Retrying cannot help: everything but STORAGE_TIMEOUT, STORAGE_UNAVAILABLE and AZURITE_START_FAILED. */
  readonly permanent: boolean;
  /** The HTTP status of the last failed request, when there was one. */
  readonly statusCode?: number;
  constructor(code: StorageErrorCode, message: string, options: { cause?: unknown; statusCode?: number } = {}) {
    super(message, { cause: options.cause });
    this.name = 'StorageError';
    this.code = code;
    this.permanent = !TRANSIENT_CODES.has(code);
    if (options.statusCode !== undefined) this.statusCode = options.statusCode;
  }
}

export function isStorageError(err: unknown, code?: StorageErrorCode): err is StorageError {
  return err instanceof StorageError && (code === undefined || err.code === code);
}

/** The HTTP status of a failed storage request (a RestError from the SDK), or undefined. */
export function httpStatusOf(err: unknown): number | undefined {
  const status = (err as { statusCode?: unknown } | null)?.statusCode;
  return typeof status === 'number' ? status : undefined;
}

/**
 * Whether retrying a failed storage request may help: network errors (no status), timeouts,
 * throttling and server errors, and a spent time budget (STORAGE_TIMEOUT, STORAGE_UNAVAILABLE).
 * Other 4xx answers and our other coded errors will not change.
 */
export function isTransientStorageError(err: unknown): boolean {
  if (err instanceof StorageError) return !err.permanent;
  if ((err as Error)?.name === 'AbortError') return false;
  const status = httpStatusOf(err);
  return status === undefined || status === 408 || status === 429 || status >= 500;
}

const SAS_PARAM = /([?&;](?:sig|SharedAccessSignature|AccountKey)=)[^&;\s"'<>]*/gi;

/** Replaces SAS signatures and account keys in a text (error messages, URLs) with `***`. */
export function redactSecrets(text: string): string {
  return text.replace(SAS_PARAM, '$1***');
}

/** Redacts secrets from an error's message (and stack) in place, and returns it. */
export function redactError<E>(err: E): E {
  if (err instanceof Error) {
    // Some errors (DOMException abort reasons) have read-only messages: those carry no URL.
    try {
      const message = redactSecrets(err.message);
      if (message !== err.message) err.message = message;
      if (err.stack && redactSecrets(err.stack) !== err.stack) err.stack = redactSecrets(err.stack);
    } catch {
      /* not writable */
    }
  }
  return err;
}
