/**
 * The error model. One table of codes (meaning, permanent or transient, HTTP status); errors are
 * recognised by brand or shape, never by `instanceof`, so errors raised by packages that do not
 * depend on the core (storage) or that are loaded twice (two copies of this module) still keep
 * their codes and their permanence.
 *
 * - `CoreMachineError`: the engine's own errors (closed `CM_ERR_*` codes), recognised by `isEngineError`.
 * - `TaskError` / `codedError` / `permanentError`: what handlers throw, with domain codes.
 * - Any object with `code: string` and `permanent: boolean` is recognised as is; an error whose
 *   `code` is in the table (e.g. a storage `BLOB_NOT_FOUND`) takes the table's permanence.
 * - Anything else is unclassified: transient (`TASK_ERROR`) with its message as the cause.
 */

/** The brand every CoreMachine error carries; shared across module copies through `Symbol.for`. */
export const ERROR_BRAND: unique symbol = Symbol.for('coremachine.error');

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
  | 'CM_ERR_DATABASE_UNREACHABLE'
  | 'CM_ERR_SERVICE_MISSING';

export interface ErrorCodeInfo {
  meaning: string;
  /** Permanent errors fail a task at once; transient ones are retried by the stage's policy. */
  permanent: boolean;
  /** The HTTP status an API answers with when this error reaches a caller. */
  httpStatus: number;
}

const info = (meaning: string, permanent: boolean, httpStatus: number): ErrorCodeInfo => ({
  meaning,
  permanent,
  httpStatus,
});

/** The codes CoreMachine knows. Packages add theirs with `registerErrorCodes`. */
export const ERROR_CODES = {
  CM_ERR_PLUGIN_INVALID: info('a plugin manifest is not a CoreMachine job', true, 500),
  CM_ERR_PLUGIN_MISSING_ELEMENT: info('a plugin manifest lacks a required element', true, 500),
  CM_ERR_PLUGIN_DUPLICATE_TYPE: info('two plugins declare the same job type', true, 500),
  CM_ERR_PLUGIN_LOAD_FAILED: info('a plugin package could not be imported', true, 500),
  CM_ERR_UNKNOWN_JOB_TYPE: info('no plugin serves this job type', true, 400),
  CM_ERR_INVALID_PARAMETERS: info('parameters do not match the schema', true, 400),
  CM_ERR_JOB_NOT_FOUND: info('no job with this id', true, 404),
  CM_ERR_INVALID_STATE: info('the job is not in a state that allows this', true, 409),
  CM_ERR_INVALID_OUTPUT: info("a handler returned an output that does not match its stage's schema", true, 500),
  CM_ERR_MIGRATION_FAILED: info('a ledger migration failed', true, 500),
  CM_ERR_DATABASE_UNREACHABLE: info('PostgreSQL cannot be reached', false, 503),
  CM_ERR_SERVICE_MISSING: info('a service a plugin declares is not supplied', true, 500),
  TASK_ERROR: info('a handler threw an unclassified error (retried)', false, 500),
  TASK_TIMEOUT: info("a handler ran longer than its stage's timeoutSeconds and was aborted", false, 504),
  TASK_LEASE_EXPIRED: info("no heartbeat within the task's lease: its worker presumably died", false, 500),
  TASK_CANCELLED: info('the job was cancelled while the task ran', true, 409),
  JOB_FAILED: info('another task failed the job while this one ran', true, 409),
  WORKER_SHUTDOWN: info('the worker shut down while the task ran; it is released, its attempt refunded', false, 503),
  LEASE_LOST: info("the task's lease was taken over (another worker re-runs it)", false, 409),
  PLAN_FAILED: info("a stage's plan threw or returned invalid tasks", true, 500),
  AGGREGATE_FAILED: info("the job's aggregate threw or returned an invalid result", true, 500),
  // Storage (raised by @coremachine/storage, recognised here by their codes).
  STORAGE_INVALID_NAME: info('a container or blob name is invalid', true, 400),
  STORAGE_CONFIG_INVALID: info('the storage configuration is invalid', true, 500),
  CONTAINER_NOT_FOUND: info('the container does not exist', true, 404),
  BLOB_NOT_FOUND: info('the blob does not exist', true, 404),
  BLOB_CHANGED: info('the blob was replaced while the job read it', true, 409),
  STORAGE_UNAVAILABLE: info('the storage endpoint failed or throttled (retried)', false, 503),
  STORAGE_TIMEOUT: info('a storage call exceeded its time budget (retried)', false, 504),
  AZURITE_START_FAILED: info('the local storage emulator (Azurite) did not start (retried)', false, 503),
  // GDAL (raised by @coremachine/geo).
  FILE_UNREADABLE: info('the file cannot be read as the expected format', true, 422),
  NOT_A_RASTER: info('the file is not a raster', true, 422),
  UNSUPPORTED_FORMAT: info('the file format is not supported', true, 422),
  CRS_MISSING: info('the dataset has no coordinate reference system', true, 422),
  CRS_MISMATCH: info('the dataset CRS differs from the one expected', true, 422),
  GDAL_NETWORK: info('GDAL could not read over the network (retried)', false, 503),
} satisfies Record<string, ErrorCodeInfo>;

export type KnownErrorCode = keyof typeof ERROR_CODES;

/**
 * The registered codes, shared by every copy of this module in the process (through
 * `Symbol.for`, as the brand is): a code a package registers with the copy it imports is known
 * to the copy the worker classifies with.
 */
const REGISTRY: unique symbol = Symbol.for('coremachine.errorCodes');
const registry: Map<string, ErrorCodeInfo> = ((globalThis as { [REGISTRY]?: Map<string, ErrorCodeInfo> })[REGISTRY] ??=
  new Map());
for (const [code, entry] of Object.entries(ERROR_CODES) as Array<[string, ErrorCodeInfo]>)
  if (!registry.has(code)) registry.set(code, entry);

/**
 * Adds a package's codes to the table (idempotent; an existing code keeps its first entry).
 *
 * @example
 *   registerErrorCodes({ SOURCE_CHANGED: { meaning: 'source replaced', permanent: true, httpStatus: 409 } });
 */
export function registerErrorCodes(codes: Record<string, ErrorCodeInfo>): void {
  for (const [code, entry] of Object.entries(codes)) if (!registry.has(code)) registry.set(code, entry);
}

/** The table entry of a code, or undefined for a code nobody registered. */
export function errorCodeInfo(code: string): ErrorCodeInfo | undefined {
  return registry.get(code);
}

/** The HTTP status for a code (500 for unknown codes). */
export function httpStatusForCode(code: string): number {
  return registry.get(code)?.httpStatus ?? 500;
}

export interface ErrorIssue {
  /** Dotted path of the offending field, e.g. `params.n`. */
  path: string;
  message: string;
}

/** What every recognised error looks like. */
export interface CodedError {
  code: string;
  message: string;
  permanent: boolean;
  detail?: unknown;
}

export class CoreMachineError extends Error {
  readonly [ERROR_BRAND] = true as const;
  readonly code: CoreMachineErrorCode;
  readonly issues: ErrorIssue[];
  readonly permanent: boolean;
  constructor(code: CoreMachineErrorCode, message: string, options: { cause?: unknown; issues?: ErrorIssue[] } = {}) {
    super(message, { cause: options.cause });
    this.name = 'CoreMachineError';
    this.code = code;
    this.issues = options.issues ?? [];
    this.permanent = ERROR_CODES[code].permanent;
  }
}

/**
 * Thrown by task handlers. `permanent: true` settles the task as failed at once (no retry is
 * spent): use it for bad input, missing blobs, unsupported formats. Without `permanent`, a code
 * in the table takes the table's permanence; any other code is transient and retried.
 *
 * @example
 *   throw new TaskError('BLOB_NOT_FOUND', `bronze/${name} does not exist`, { permanent: true });
 */
export class TaskError extends Error {
  readonly [ERROR_BRAND] = true as const;
  readonly code: string;
  readonly permanent: boolean;
  readonly detail: unknown;
  constructor(code: string, message: string, options: { permanent?: boolean; detail?: unknown; cause?: unknown } = {}) {
    super(message, { cause: options.cause });
    this.name = 'TaskError';
    this.code = code;
    this.permanent = options.permanent ?? registry.get(code)?.permanent ?? false;
    this.detail = options.detail;
  }
}

/** A `TaskError` whose permanence comes from the table (transient for unregistered codes). */
export function codedError(
  code: string,
  message: string,
  options: { permanent?: boolean; detail?: unknown; cause?: unknown } = {},
): TaskError {
  return new TaskError(code, message, options);
}

/** Shorthand for a permanent `TaskError`. */
export function permanentError(code: string, message: string, detail?: unknown): TaskError {
  return new TaskError(code, message, { permanent: true, detail });
}

function isObject(v: unknown): v is Record<PropertyKey, unknown> {
  return typeof v === 'object' && v !== null;
}

/**
 * True for any error CoreMachine recognises as classified: branded (any copy of this module), or
 * shaped `{ code: string, permanent: boolean }` (errors of packages that do not depend on the core).
 */
export function isCoreMachineError(err: unknown): err is CodedError {
  if (!isObject(err)) return false;
  if (err[ERROR_BRAND] === true && typeof err['code'] === 'string') return true;
  return typeof err['code'] === 'string' && typeof err['permanent'] === 'boolean';
}

/**
 * True for an engine error (`CoreMachineError`, a `CM_ERR_*` code of the table) from any copy of
 * this module: recognised by its brand, never by `instanceof`.
 */
export function isEngineError(err: unknown): err is CoreMachineError {
  return (
    isObject(err) &&
    err[ERROR_BRAND] === true &&
    typeof err['code'] === 'string' &&
    err['code'].startsWith('CM_ERR_') &&
    Object.hasOwn(ERROR_CODES, err['code'])
  );
}

/**
 * Classifies any thrown value: its code and permanence (own `permanent` first, then the table),
 * or `null` when it is unclassified (a plain Error, a system error, a driver error).
 */
export function classifyError(err: unknown): { code: string; permanent: boolean } | null {
  if (!isObject(err) || typeof err['code'] !== 'string') return null;
  const code = err['code'];
  if (typeof err['permanent'] === 'boolean') return { code, permanent: err['permanent'] };
  if (err[ERROR_BRAND] === true) return { code, permanent: registry.get(code)?.permanent ?? false };
  const known = registry.get(code);
  return known ? { code, permanent: known.permanent } : null;
}

// ---- abort reasons ------------------------------------------------------------------------

/** Why a handler's `ctx.signal` was aborted. */
export type AbortKind = 'cancelled' | 'job_failed' | 'shutdown' | 'timeout' | 'lease_lost';

const ABORT_CODES = {
  cancelled: 'TASK_CANCELLED',
  job_failed: 'JOB_FAILED',
  shutdown: 'WORKER_SHUTDOWN',
  timeout: 'TASK_TIMEOUT',
  lease_lost: 'LEASE_LOST',
} as const satisfies Record<AbortKind, KnownErrorCode>;

/**
 * The reason on an aborted `ctx.signal`: a `TaskError` with a `kind`. A handler may simply
 * rethrow `ctx.signal.reason` (or let `signal.throwIfAborted()` do it): the engine settles the
 * task as its kind says (cancelled, released on shutdown, failed TASK_TIMEOUT and retried).
 *
 * @example
 *   ctx.signal.addEventListener('abort', () => child.kill());
 *   if (isAbortReason(ctx.signal.reason, 'timeout')) ...
 */
export class AbortReason extends TaskError {
  readonly kind: AbortKind;
  constructor(kind: AbortKind, message: string) {
    super(ABORT_CODES[kind], message);
    this.name = 'AbortReason';
    this.kind = kind;
  }
}

export function abortReason(kind: AbortKind, message?: string): AbortReason {
  const messages: Record<AbortKind, string> = {
    cancelled: 'the job was cancelled',
    job_failed: 'the job failed while this task ran',
    shutdown: 'the worker is shutting down',
    timeout: 'the task ran past its time limit',
    lease_lost: "the task's lease was taken over",
  };
  return new AbortReason(kind, message ?? messages[kind]);
}

/** True when `reason` is an abort reason (of the given kind), from any copy of this module. */
export function isAbortReason(reason: unknown, kind?: AbortKind): reason is AbortReason {
  if (!isCoreMachineError(reason)) return false;
  const k = (reason as { kind?: unknown }).kind;
  return typeof k === 'string' && k in ABORT_CODES && (kind === undefined || k === kind);
}

// ---- stored errors --------------------------------------------------------------------------

/** The error shape stored on tasks and jobs (`error` column) and returned by the API. */
export interface StoredError {
  code: string;
  message: string;
  detail?: unknown;
  /** Present on job errors: the task that caused the failure. */
  taskId?: string;
  stage?: string;
}

// An absolute path of this machine (not a GDAL /vsi… path): replaced with its last element.
const SERVER_PATH = /(?<![\w/.~-])\/(?!vsi)(?:[^\s'"`:;,()<>[\]{}/]+\/)+([^\s'"`:;,()<>[\]{}/]*)/g;
const SECRET = /([?&;](?:sig|SharedAccessSignature|AccountKey|password)=)[^&;\s"'<>]*/gi;

/** Removes server paths (keeping file names) and secrets from a text a user will see. */
export function scrubMessage(text: string): string {
  return text.replace(SECRET, '$1***').replace(SERVER_PATH, (_m, last: string) => `…/${last}`);
}

function scrubDetail(v: unknown, depth = 0): unknown {
  if (typeof v === 'string') return scrubMessage(v);
  if (depth > 4 || !isObject(v)) return v;
  if (Array.isArray(v)) return v.map((x) => scrubDetail(x, depth + 1));
  return Object.fromEntries(
    Object.entries(v)
      .filter(([k]) => k !== 'stack')
      .map(([k, x]) => [k, scrubDetail(x, depth + 1)]),
  );
}

/**
 * The stored form of any thrown value, safe to show a user: never a stack, never a server path.
 * Stacks belong in the log (the worker logs them with job and task ids). An unclassified error is
 * transient (`TASK_ERROR`) with its message as the cause.
 */
export function toStoredError(err: unknown): StoredError & { permanent: boolean } {
  const classified = classifyError(err);
  const message = (e: unknown) =>
    scrubMessage(
      isObject(e) && typeof e['message'] === 'string' && e['message']
        ? e['message']
        : e instanceof Error
          ? e.name
          : String(e),
    );
  if (classified) {
    const e = err as Record<string, unknown>;
    const issues = Array.isArray(e['issues']) && e['issues'].length ? e['issues'] : undefined;
    const detail = e['detail'] !== undefined ? e['detail'] : issues;
    return {
      code: classified.code,
      message: message(err),
      ...(detail !== undefined ? { detail: scrubDetail(detail) } : {}),
      permanent: classified.permanent,
    };
  }
  return { code: 'TASK_ERROR', message: message(err), permanent: false };
}
