/**
 * Retention: settled jobs older than a cut-off are purged with everything that belongs to them
 * (tasks, stages, events, earlier runs, and what their plugins left outside the ledger —
 * inventory rows, temporary blobs — through per-type hooks). One process purges at a time (a
 * session advisory lock; the others skip); jobs go in small batches, each its own short
 * transaction that locks only the rows of its jobs, so the ledger stays writable throughout.
 * `deleteJob` removes one settled job the same way.
 */
import type { Queryable } from './db.ts';
import type { JobStatus } from './define-job.ts';
import { CoreMachineError } from './errors.ts';
import type { CoreMachine } from './machine.ts';
import { TERMINAL_JOB_STATUSES } from './views.ts';

/** A job about to be purged, as a hook sees it (its task rows are still there). */
export interface PurgedJob {
  id: string;
  type: string;
  status: JobStatus;
  parameters: Record<string, unknown>;
}

/**
 * What a job type leaves outside the ledger, removed before the job's rows go: returns counts by
 * what it removed (`{ inventory_rows: 120 }`, `{ blobs: 3 }`). A hook that throws keeps its jobs
 * for the next purge (nothing of theirs is deleted).
 */
export type PurgeHook = (jobs: PurgedJob[], ctx: { machine: CoreMachine }) => Promise<Record<string, number>>;

export interface PurgeOptions {
  /** Jobs settled (completed_at) more than this many seconds ago. */
  olderThanSeconds: number;
  /** Only these final statuses (default: all of them). */
  statuses?: JobStatus[];
  /** Jobs per batch (default 100). */
  batchSize?: number;
  /** Stop after this many jobs (default: no limit). */
  maxJobs?: number;
  hooks?: Record<string, PurgeHook>;
}

export interface PurgeResult {
  /** Another process holds the purge lock: nothing was done. */
  skipped: boolean;
  jobs: number;
  tasks: number;
  events: number;
  /** Counts the hooks reported, summed (`inventory_rows`, `blobs`, ...). */
  extra: Record<string, number>;
  batches: number;
}

const lockKey = (schema: string) => `coremachine:purge:${schema}`;

function checkStatuses(statuses: JobStatus[] | undefined): JobStatus[] {
  const wanted = statuses?.length ? statuses : [...TERMINAL_JOB_STATUSES];
  const bad = wanted.filter((s) => !TERMINAL_JOB_STATUSES.includes(s));
  if (bad.length)
    throw new CoreMachineError(
      'CM_ERR_INVALID_PARAMETERS',
      `Only settled jobs can be purged; not a final status: ${bad.join(', ')} (final: ${TERMINAL_JOB_STATUSES.join(', ')})`,
      { issues: [{ path: 'statuses', message: `not a final status: ${bad.join(', ')}` }] },
    );
  return wanted;
}

/** Runs hooks per type; the sums of their counts. */
async function runHooks(
  machine: CoreMachine,
  jobs: PurgedJob[],
  hooks: Record<string, PurgeHook> | undefined,
  extra: Record<string, number>,
): Promise<void> {
  const byType = new Map<string, PurgedJob[]>();
  for (const j of jobs) byType.set(j.type, [...(byType.get(j.type) ?? []), j]);
  for (const [type, list] of byType) {
    const hook = hooks?.[type];
    if (!hook) continue;
    const counts = await hook(list, { machine });
    for (const [k, n] of Object.entries(counts)) extra[k] = (extra[k] ?? 0) + n;
  }
}

/**
 * Deletes the ledger rows of `ids` in one transaction, re-checking under the jobs' row locks that
 * each is still settled (a job re-run meanwhile is left alone). Returns what went.
 */
async function deleteRows(
  machine: CoreMachine,
  ids: string[],
  stillEligible: string,
  args: unknown[],
): Promise<{ jobs: string[]; tasks: number; events: number }> {
  const { t } = machine;
  const client = await machine.pool.connect();
  try {
    await client.query('BEGIN');
    const { rows } = await client.query(
      `SELECT id FROM ${t.jobs} WHERE id = ANY($1) AND ${stillEligible} FOR UPDATE SKIP LOCKED`,
      [ids, ...args],
    );
    const locked = rows.map((r) => r.id as string);
    let tasks = 0;
    let events = 0;
    if (locked.length) {
      tasks = (await client.query(`DELETE FROM ${t.tasks} WHERE job_id = ANY($1)`, [locked])).rowCount ?? 0;
      events = (await client.query(`DELETE FROM ${t.events} WHERE job_id = ANY($1)`, [locked])).rowCount ?? 0;
      // Stages and earlier runs go with their job (ON DELETE CASCADE).
      await client.query(`DELETE FROM ${t.jobs} WHERE id = ANY($1)`, [locked]);
    }
    await client.query('COMMIT');
    return { jobs: locked, tasks, events };
  } catch (err) {
    await client.query('ROLLBACK').catch(() => {});
    throw err;
  } finally {
    client.release();
  }
}

async function loadJobs(db: Queryable, table: string, where: string, args: unknown[], limit: number) {
  const { rows } = await db.query(
    `SELECT id, type, status, parameters FROM ${table} WHERE ${where} ORDER BY completed_at, id LIMIT ${limit}`,
    args,
  );
  return rows as PurgedJob[];
}

/**
 * Purges settled jobs older than `olderThanSeconds` in batches, holding the purge lock so that
 * one process purges at a time (another finds `skipped: true`).
 */
export async function purgeJobs(machine: CoreMachine, options: PurgeOptions): Promise<PurgeResult> {
  if (!Number.isFinite(options.olderThanSeconds) || options.olderThanSeconds < 0)
    throw new CoreMachineError('CM_ERR_INVALID_PARAMETERS', 'olderThan must be a non-negative duration', {
      issues: [{ path: 'olderThan', message: 'must be a non-negative duration' }],
    });
  const statuses = checkStatuses(options.statuses);
  const batchSize = Math.max(1, Math.min(options.batchSize ?? 100, 1000));
  const result: PurgeResult = { skipped: false, jobs: 0, tasks: 0, events: 0, extra: {}, batches: 0 };
  const lock = await machine.pool.connect();
  try {
    const {
      rows: [got],
    } = await lock.query('SELECT pg_try_advisory_lock(hashtext($1)) AS ok', [lockKey(machine.config.schema)]);
    if (!got?.ok) return { ...result, skipped: true };
    try {
      const where = `status = ANY($2) AND completed_at < now() - make_interval(secs => $3)`;
      const args = [statuses, options.olderThanSeconds];
      // Jobs a hook refused stay for the next purge; skip them in this one.
      const kept = new Set<string>();
      while (options.maxJobs === undefined || result.jobs < options.maxJobs) {
        const limit = Math.min(batchSize, (options.maxJobs ?? Infinity) - result.jobs);
        const jobs = await loadJobs(
          machine.pool,
          machine.t.jobs,
          `${where} AND NOT (id = ANY($1))`,
          [[...kept], ...args],
          limit,
        );
        if (!jobs.length) break;
        try {
          await runHooks(machine, jobs, options.hooks, result.extra);
        } catch (err) {
          machine.log.warn('purge: a clean-up hook failed; its jobs are kept for the next purge', {
            error: (err as Error).message,
            jobs: jobs.length,
          });
          for (const j of jobs) kept.add(j.id);
          continue;
        }
        const done = await deleteRows(
          machine,
          jobs.map((j) => j.id),
          where,
          args,
        );
        result.jobs += done.jobs.length;
        result.tasks += done.tasks;
        result.events += done.events;
        result.batches += 1;
        // Jobs skipped under lock (re-run meanwhile) are not selected again.
        for (const j of jobs) if (!done.jobs.includes(j.id)) kept.add(j.id);
      }
    } finally {
      await lock.query('SELECT pg_advisory_unlock(hashtext($1))', [lockKey(machine.config.schema)]);
    }
  } finally {
    lock.release();
  }
  if (result.jobs)
    machine.log.info('purged settled jobs', {
      jobs: result.jobs,
      tasks: result.tasks,
      events: result.events,
      ...result.extra,
    });
  return result;
}

/** Deletes one settled job with everything of it (hooks included). */
export async function deleteJob(
  machine: CoreMachine,
  jobId: string,
  hooks?: Record<string, PurgeHook>,
): Promise<{ jobId: string; deleted: true; tasks: number; events: number; extra: Record<string, number> }> {
  const job = await machine.requireJob(jobId);
  if (!TERMINAL_JOB_STATUSES.includes(job.status))
    throw new CoreMachineError(
      'CM_ERR_INVALID_STATE',
      `Job ${jobId} is ${job.status}; only a settled job can be deleted: cancel it first`,
    );
  const extra: Record<string, number> = {};
  await runHooks(
    machine,
    [{ id: job.id, type: job.type, status: job.status, parameters: job.parameters as Record<string, unknown> }],
    hooks,
    extra,
  );
  const done = await deleteRows(machine, [jobId], `status = ANY($2)`, [[...TERMINAL_JOB_STATUSES]]);
  if (!done.jobs.length)
    throw new CoreMachineError('CM_ERR_INVALID_STATE', `Job ${jobId} changed while it was being deleted; try again`);
  return { jobId, deleted: true, tasks: done.tasks, events: done.events, extra };
}

/** `7d`, `12h`, `30m`, `45s` or a number of seconds → seconds; null when not a duration. */
export function parseDuration(text: string): number | null {
  const m = /^\s*(\d+(?:\.\d+)?)\s*(s|m|h|d|w)?\s*$/i.exec(text);
  if (!m) return null;
  const unit = { s: 1, m: 60, h: 3600, d: 86_400, w: 604_800 }[(m[2] ?? 's').toLowerCase() as 's'];
  return Number(m[1]) * unit;
}
