/** Codes raised by the storage package; job handlers map them to permanent task errors. */
export type StorageErrorCode =
  | 'STORAGE_INVALID_NAME'
  | 'STORAGE_CONFIG_INVALID'
  | 'CONTAINER_NOT_FOUND'
  | 'BLOB_NOT_FOUND'
  | 'BLOB_CHANGED'
  | 'AZURITE_START_FAILED';

/**
 * One error class for storage, with a closed code union. Messages name the offending value.
 *
 * @example
 *   try { await storage.stat('bronze', 'x.tif') } catch (e) { if (isStorageError(e, 'CONTAINER_NOT_FOUND')) ... }
 */
export class StorageError extends Error {
  readonly code: StorageErrorCode;
  constructor(code: StorageErrorCode, message: string, options: { cause?: unknown } = {}) {
    super(message, { cause: options.cause });
    this.name = 'StorageError';
    this.code = code;
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
 * throttling and server errors. Other 4xx answers will not change.
 */
export function isTransientStorageError(err: unknown): boolean {
  if (err instanceof StorageError) return false;
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
    err.message = redactSecrets(err.message);
    if (err.stack) err.stack = redactSecrets(err.stack);
  }
  return err;
}
