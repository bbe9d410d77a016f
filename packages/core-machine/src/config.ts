import type { Logger } from './define-job.ts';

/** Engine settings. Every field has a default; the server parses them from the environment. */
export interface MachineConfig {
  /** Schema of the ledger tables; pg-boss lives in `<schema>_queue`. */
  schema: string;
  /** Runs a task may get (first included) unless its stage says otherwise. */
  maxAttempts: number;
  retryBaseDelayMs: number;
  retryMaxDelayMs: number;
  /** Seconds without heartbeat after which a running task is re-run elsewhere. */
  leaseSeconds: number;
  /** How often a worker looks for expired leases. */
  sweepIntervalMs: number;
  /**
   * Seconds after which a queued task, a queued job or a finished stage that nothing picked up
   * is presumed to have lost its queue message and gets a new one (duplicates are harmless:
   * every step is a compare-and-set). The backstop behind "no job can hang".
   */
  stallSeconds: number;
  /**
   * How often pg-boss looks for messages whose worker stopped heartbeating (it died between
   * fetching a message and claiming its task) and delivers them again.
   */
  queueSuperviseSeconds: number;
  /**
   * Per job type: messages fetched at once (their handlers run in parallel) and fetch loops per
   * worker; up to batchSize × concurrency handlers run at once. Plugins may override both.
   */
  batchSize: number;
  concurrency: number;
  pollingIntervalSeconds: number;
  poolMax: number;
  /**
   * Seconds a handler may run unless its stage says otherwise (CM_TASK_TIMEOUT_SECONDS); past it
   * the handler is aborted and the task fails TASK_TIMEOUT (transient, retried).
   */
  taskTimeoutSeconds: number;
  /**
   * Seconds an aborted handler gets to return before the worker settles its task without it (a
   * handler that ignores its signal cannot hold a task, a cancel or a shutdown forever).
   */
  abortGraceSeconds: number;
  /**
   * On SIGTERM a worker stops fetching and lets running tasks finish for up to this many seconds
   * (CM_SHUTDOWN_GRACE_SECONDS), heartbeating them; then it aborts and releases the rest.
   */
  shutdownGraceSeconds: number;
  /** How often a worker checks whether the jobs of its running tasks were cancelled. */
  cancelPollMs: number;
  /** Seconds after its last heartbeat a worker process no longer counts as live. */
  workerLivenessSeconds: number;
  /**
   * Cluster-wide caps on running tasks, keyed by job type (`process_raster`) or by job type and
   * stage name (`process_raster.create_cog`): at most that many of its tasks run at once across
   * every worker process (CM_CONCURRENCY_LIMITS="process_raster=4,ingest_vector.load=2"). Enforced
   * in the database when a task is claimed.
   */
  concurrencyLimits: Record<string, number>;
}

export const DEFAULT_CONFIG: MachineConfig = {
  schema: 'coremachine',
  maxAttempts: 4,
  retryBaseDelayMs: 2_000,
  retryMaxDelayMs: 300_000,
  leaseSeconds: 60,
  sweepIntervalMs: 5_000,
  stallSeconds: 300,
  queueSuperviseSeconds: 15,
  batchSize: 50,
  concurrency: 2,
  pollingIntervalSeconds: 0.5,
  poolMax: 10,
  taskTimeoutSeconds: 3_600,
  abortGraceSeconds: 5,
  shutdownGraceSeconds: 30,
  cancelPollMs: 500,
  workerLivenessSeconds: 15,
  concurrencyLimits: {},
};

/** Parses `type=4,type.stage=2` (CM_CONCURRENCY_LIMITS) into concurrency limits. */
export function parseConcurrencyLimits(raw: string): Record<string, number> {
  const out: Record<string, number> = {};
  for (const part of raw
    .split(',')
    .map((p) => p.trim())
    .filter(Boolean)) {
    const m = /^([A-Za-z0-9_-]+(?:\.[A-Za-z0-9_-]+)?)\s*=\s*(\d+)$/.exec(part);
    if (!m || Number(m[2]) < 1)
      throw new Error(
        `CM_CONCURRENCY_LIMITS: ${JSON.stringify(part)} is not <job type>[.<stage>]=<positive integer>, e.g. process_raster=4`,
      );
    out[m[1]!] = Number(m[2]);
  }
  return out;
}

/** Settings an embedding process gives through the environment (only those set). */
export function configFromEnv(): Partial<MachineConfig> {
  const out: Partial<MachineConfig> = {};
  const num = (name: string): number | undefined => {
    const raw = process.env[name];
    if (raw === undefined || raw === '') return undefined;
    const v = Number(raw);
    if (!Number.isFinite(v) || v < 0)
      throw new Error(`${name} must be a non-negative number, got ${JSON.stringify(raw)}`);
    return v;
  };
  const timeout = num('CM_TASK_TIMEOUT_SECONDS');
  if (timeout !== undefined) out.taskTimeoutSeconds = timeout;
  const grace = num('CM_SHUTDOWN_GRACE_SECONDS');
  if (grace !== undefined) out.shutdownGraceSeconds = grace;
  const limits = process.env['CM_CONCURRENCY_LIMITS'];
  if (limits) out.concurrencyLimits = parseConcurrencyLimits(limits);
  return out;
}

export interface MachineOptions {
  connectionString: string;
  config?: Partial<MachineConfig>;
  log?: Logger;
  /** Extra migration folders applied with the core's (e.g. the STAC store). */
  migrationDirs?: string[];
}

/** Exponential backoff: base × 2^(attempt-1), capped. `attempt` is the run that just failed. */
export function backoffMs(attempt: number, baseMs: number, maxMs: number): number {
  return Math.min(maxMs, baseMs * 2 ** Math.max(0, attempt - 1));
}

/** The log level an embedding process asked for in CM_LOG_LEVEL (info when unset or unknown). */
export function logLevelFromEnv(): 'debug' | 'info' | 'warn' | 'error' | 'silent' {
  const level = process.env['CM_LOG_LEVEL'];
  return level === 'debug' || level === 'warn' || level === 'error' || level === 'silent' ? level : 'info';
}
