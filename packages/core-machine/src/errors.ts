/**
 * One error class for the whole engine, with a closed code union. Codes prefixed `CM_ERR_`
 * are raised by the core; task handlers raise `TaskError` (below) with their own domain codes
 * (`BLOB_NOT_FOUND`, `CRS_MISSING`, ...).
 */
export type CoreMachineErrorCode =
  | 'CM_ERR_PLUGIN_INVALID'
  | 'CM_ERR_PLUGIN_MISSING_ELEMENT'
  | 'CM_ERR_PLUGIN_DUPLICATE_TYPE'
  | 'CM_ERR_PLUGIN_LOAD_FAILED'
  | 'CM_ERR_UNKNOWN_JOB_TYPE'
  | 'CM_ERR_INVALID_PARAMETERS'
  | 'CM_ERR_JOB_NOT_FOUND'
  | 'CM_ERR_INVALID_STATE'
  | 'CM_ERR_INVALID_OUTPUT'
  | 'CM_ERR_MIGRATION_FAILED'
  | 'CM_ERR_DATABASE_UNREACHABLE';

export interface ErrorIssue {
  /** Dotted path of the offending field, e.g. `params.n`. */
  path: string;
  message: string;
}

export class CoreMachineError extends Error {
  readonly code: CoreMachineErrorCode;
  readonly issues: ErrorIssue[];
  constructor(code: CoreMachineErrorCode, message: string, options: { cause?: unknown; issues?: ErrorIssue[] } = {}) {
    super(message, { cause: options.cause });
    this.name = 'CoreMachineError';
    this.code = code;
    this.issues = options.issues ?? [];
  }
}

/**
 * Thrown by task handlers. `permanent: true` settles the task as failed at once (no retry is
 * spent): use it for bad input, missing blobs, unsupported formats. Anything else thrown by a
 * handler is treated as transient and retried with exponential backoff.
 *
 * @example
 *   throw new TaskError('BLOB_NOT_FOUND', `bronze/${name} does not exist`, { permanent: true });
 */
export class TaskError extends Error {
  readonly code: string;
  readonly permanent: boolean;
  readonly detail: unknown;
  constructor(code: string, message: string, options: { permanent?: boolean; detail?: unknown; cause?: unknown } = {}) {
    super(message, { cause: options.cause });
    this.name = 'TaskError';
    this.code = code;
    this.permanent = options.permanent ?? false;
    this.detail = options.detail;
  }
}

/** Shorthand for a permanent `TaskError`. */
export function permanentError(code: string, message: string, detail?: unknown): TaskError {
  return new TaskError(code, message, { permanent: true, detail });
}

/** The error shape stored on tasks and jobs (`error` column) and returned by the API. */
export interface StoredError {
  code: string;
  message: string;
  detail?: unknown;
  /** Present on job errors: the task that caused the failure. */
  taskId?: string;
  stage?: string;
}

export function toStoredError(err: unknown): StoredError & { permanent: boolean } {
  if (err instanceof TaskError) {
    return { code: err.code, message: err.message, detail: err.detail, permanent: err.permanent };
  }
  if (err instanceof CoreMachineError) {
    return {
      code: err.code,
      message: err.message,
      detail: err.issues.length ? err.issues : undefined,
      permanent: true,
    };
  }
  if (err instanceof Error) {
    return {
      code: 'TASK_ERROR',
      message: err.message || err.name,
      detail: err.stack?.split('\n').slice(0, 6).join('\n'),
      permanent: false,
    };
  }
  return { code: 'TASK_ERROR', message: String(err), permanent: false };
}
