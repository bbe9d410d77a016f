/**
 * The engine record: what the focused modules (control steps, worker, settle, claim, stall
 * sweep) need of a running CoreMachine. They take this record, not the class, so none of them
 * imports machine.ts (no `advance → machine → worker` circle); `CoreMachine` is one.
 */
import type { PgBoss } from 'pg-boss';
import type { z } from 'zod';
import { backoffMs, type MachineConfig } from './config.ts';
import type { Pool } from './db.ts';
import type { AnyJobDefinition, LedgerInfo, Logger, RetryPolicy, Services } from './define-job.ts';
import { CoreMachineError } from './errors.ts';
import type { Tables } from './ledger.ts';

export interface Engine {
  readonly pool: Pool;
  readonly boss: PgBoss;
  readonly config: MachineConfig;
  readonly log: Logger;
  readonly services: Services;
  readonly t: Tables;
  readonly plugins: ReadonlyMap<string, AnyJobDefinition>;
  /** Handed to plugins as `ctx.ledger`. */
  readonly ledger: LedgerInfo;
}

/** The plugin of a job type, or CM_ERR_UNKNOWN_JOB_TYPE naming the known ones. */
export function pluginOf(engine: Pick<Engine, 'plugins'>, type: string): AnyJobDefinition {
  const p = engine.plugins.get(type);
  if (!p) {
    throw new CoreMachineError(
      'CM_ERR_UNKNOWN_JOB_TYPE',
      `Unknown job type ${JSON.stringify(type)}; known types: ${[...engine.plugins.keys()].join(', ')}`,
      { issues: [{ path: 'type', message: `unknown job type ${JSON.stringify(type)}` }] },
    );
  }
  return p;
}

/** Retry delay for a task that failed on run `attempt`, by its stage's policy or the config's. */
export function retryDelayMs(
  config: MachineConfig,
  attempt: number,
  policy?: Pick<RetryPolicy, 'baseDelayMs' | 'maxDelayMs'>,
): number {
  return backoffMs(
    attempt,
    policy?.baseDelayMs ?? config.retryBaseDelayMs,
    policy?.maxDelayMs ?? config.retryMaxDelayMs,
  );
}

/** Turns zod issues into `params.<path>: message` entries. */
export function zodIssues(err: z.ZodError, prefix = 'params'): Array<{ path: string; message: string }> {
  return err.issues.map((i) => {
    const path = [prefix, ...i.path.map(String)].join('.');
    const keys = (i as { keys?: string[] }).keys;
    return { path: keys?.length ? keys.map((k) => `${path}.${k}`).join(', ') : path, message: i.message };
  });
}

export interface LiveWorker {
  id: string;
  host: string;
  pid: number;
  jobTypes: string[];
  control: boolean;
  running: number;
  stopping: boolean;
  startedAt: string;
  heartbeatAgeSeconds: number;
}

/** Worker processes whose heartbeat in the database is fresh. */
export async function liveWorkers(engine: Pick<Engine, 'pool' | 't' | 'config'>): Promise<LiveWorker[]> {
  const { rows } = await engine.pool.query(
    `SELECT id, host, pid, job_types, control, running, stopping, started_at,
            extract(epoch FROM now() - heartbeat_at)::float8 AS age
     FROM ${engine.t.workers} WHERE heartbeat_at > now() - make_interval(secs => $1) ORDER BY started_at`,
    [engine.config.workerLivenessSeconds],
  );
  return rows.map((r) => ({
    id: r.id,
    host: r.host,
    pid: r.pid,
    jobTypes: r.job_types,
    control: r.control,
    running: r.running,
    stopping: r.stopping,
    startedAt: new Date(r.started_at).toISOString(),
    heartbeatAgeSeconds: Math.round(r.age * 10) / 10,
  }));
}
