/**
 * Structured JSON logs through pino: one line per entry (on stderr by default), `time` as an ISO
 * instant, `level` as its name, the message under `msg`. Lines about a job, stage or task carry
 * the same field names everywhere (`job_id`, `job_type`, `stage`, `task_id`, `attempt`): the
 * engine's own camelCase fields (`jobId`, `taskId`, ...) are renamed on the way out, so a log
 * search for one job finds the lines of the API, the planner and every worker alike.
 * Stacks go here and nowhere a user sees.
 */
import { hostname } from 'node:os';
import { pino, type DestinationStream, type Logger as PinoLogger } from 'pino';
import type { Logger } from './define-job.ts';

export type LogLevel = 'debug' | 'info' | 'warn' | 'error' | 'silent';

/** The engine's Logger plus `debug` and `child` (fields merged into every line of the child). */
export interface StructuredLogger extends Logger {
  debug(message: string, fields?: Record<string, unknown>): void;
  child(fields: Record<string, unknown>): StructuredLogger;
}

/** Field names that mean the same thing everywhere, whoever logs them. */
const RENAME: Record<string, string> = {
  jobId: 'job_id',
  jobType: 'job_type',
  taskId: 'task_id',
  stageIndex: 'stage',
  stage_index: 'stage',
  stageName: 'stage_name',
  attempts: 'attempt',
};

/** Renames the engine's camelCase ids to the log's field names (values unchanged). */
export function normalizeFields(fields: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(fields)) out[RENAME[k] ?? k] = v;
  return out;
}

function wrap(p: PinoLogger): StructuredLogger {
  const emit = (level: 'debug' | 'info' | 'warn' | 'error') => (message: string, fields?: Record<string, unknown>) =>
    fields ? p[level](normalizeFields(fields), message) : p[level](message);
  return {
    debug: emit('debug'),
    info: emit('info'),
    warn: emit('warn'),
    error: emit('error'),
    child: (fields) => wrap(p.child(normalizeFields(fields))),
  };
}

export interface LogOptions {
  /** Where lines go (default: stderr, written synchronously so a crash loses no line). */
  destination?: DestinationStream;
}

/** A pino logger at `level` whose lines carry `pid`, `hostname` and `base`. */
export function createPinoLogger(
  level: LogLevel = 'info',
  base: Record<string, unknown> = {},
  options: LogOptions = {},
): StructuredLogger {
  const p = pino(
    {
      level,
      base: normalizeFields({ pid: process.pid, hostname: hostname(), ...base }),
      timestamp: pino.stdTimeFunctions.isoTime,
      formatters: { level: (label) => ({ level: label }) },
    },
    options.destination ?? pino.destination({ dest: 2, sync: true }),
  );
  return wrap(p);
}

/**
 * A logger whose lines carry `fields`: the logger's own child when it has one (every logger made
 * here does), else a wrapper merging them (a Logger an embedding process supplied).
 */
export function withFields(log: Logger, fields: Record<string, unknown>): Logger {
  const child = (log as Partial<StructuredLogger>).child;
  if (typeof child === 'function') return child.call(log, fields);
  const merged = (f?: Record<string, unknown>) => ({ ...fields, ...f });
  return {
    info: (m, f) => log.info(m, merged(f)),
    warn: (m, f) => log.warn(m, merged(f)),
    error: (m, f) => log.error(m, merged(f)),
  };
}

/** The fields every line about one task run carries. */
export function taskLogFields(row: {
  id: string;
  job_id: string;
  type: string;
  stage_index: number;
  attempts: number;
}): Record<string, unknown> {
  return { job_id: row.job_id, job_type: row.type, stage: row.stage_index, task_id: row.id, attempt: row.attempts };
}
