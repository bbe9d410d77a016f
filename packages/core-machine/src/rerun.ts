/**
 * Re-runs: a settled job runs again with the same id and parameters (a replaced source blob is
 * loaded again, a fixed plugin re-applied). The run that ended is kept in `job_runs` (status,
 * result, error, times, stage counters); its task rows make way for the new run's (task ids
 * are derived from the job id, stage and key). Events carry the run they belong to (stamped by
 * the migration's trigger), so each run's timeline stays apart.
 */
import { quoteIdent, withTransaction, type Queryable } from './db.ts';
import type { JobStatus } from './define-job.ts';
import { CoreMachineError } from './errors.ts';
import { addEvent, sendControl } from './ledger.ts';
import type { CoreMachine } from './machine.ts';
import { zodIssues } from './machine.ts';
import { toEvent, type JobEvent, type JobView, TERMINAL_JOB_STATUSES } from './views.ts';

/** An earlier or the current run of a job. */
export interface JobRun {
  run: number;
  status: JobStatus;
  current: boolean;
  pluginVersion: string;
  queuedAt: string;
  startedAt: string | null;
  completedAt: string | null;
  /** Tasks the run had and the retries it spent (earlier runs; null for the current one). */
  tasks: number | null;
  retries: number | null;
  stages: Array<{ index: number; name: string; status: string; total: number; completed: number; failed: number }>;
  result: unknown;
  error: unknown;
}

/** The history of earlier runs (migration 010). */
export const runsTable = (machine: CoreMachine): string => `${quoteIdent(machine.t.schema)}.job_runs`;

const iso = (v: unknown): string | null => (v ? new Date(v as string).toISOString() : null);

/** Runs a settled job again, same id and parameters; the ended run goes to its history. */
export async function rerunJob(machine: CoreMachine, jobId: string): Promise<JobView> {
  const job = await machine.requireJob(jobId);
  if (!TERMINAL_JOB_STATUSES.includes(job.status))
    throw new CoreMachineError(
      'CM_ERR_INVALID_STATE',
      `Job ${jobId} is ${job.status}; only a settled job (completed, completed_with_errors, failed or cancelled) can be re-run: cancel it first`,
    );
  const plugin = machine.plugin(job.type);
  // The parameters are the job's; the plugin loaded now must still accept them.
  const parsed = plugin.parameters.safeParse(job.parameters);
  if (!parsed.success) {
    const issues = zodIssues(parsed.error);
    throw new CoreMachineError(
      'CM_ERR_INVALID_PARAMETERS',
      `Job ${jobId}'s parameters no longer match ${job.type} ${plugin.version}: ${issues.map((i) => `${i.path}: ${i.message}`).join('; ')}; submit a new job instead`,
      { issues },
    );
  }
  const { t } = machine;
  await withTransaction(machine.pool, async (client) => {
    const {
      rows: [row],
    } = await client.query(`SELECT * FROM ${t.jobs} WHERE id = $1 FOR UPDATE`, [jobId]);
    if (!row || !TERMINAL_JOB_STATUSES.includes(row.status)) return; // re-run (or purged) meanwhile
    const { rows: stages } = await client.query(
      `SELECT stage_index AS index, name, status, total, completed, failed FROM ${t.stages} WHERE job_id = $1 ORDER BY stage_index`,
      [jobId],
    );
    const {
      rows: [counts],
    } = await client.query(
      `SELECT count(*)::int AS tasks, COALESCE(sum(GREATEST(attempts - 1, 0)), 0)::int AS retries FROM ${t.tasks} WHERE job_id = $1`,
      [jobId],
    );
    await client.query(
      `INSERT INTO ${runsTable(machine)} (job_id, run, status, plugin_version, result, error, stages, tasks, retries, queued_at, started_at, completed_at)
       VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)`,
      [
        jobId,
        row.run,
        row.status,
        row.plugin_version,
        row.result === null ? null : JSON.stringify(row.result),
        row.error === null ? null : JSON.stringify(row.error),
        JSON.stringify(stages),
        counts.tasks,
        counts.retries,
        row.run_queued_at ?? row.created_at,
        row.started_at,
        row.completed_at,
      ],
    );
    await client.query(`DELETE FROM ${t.tasks} WHERE job_id = $1`, [jobId]);
    await client.query(`DELETE FROM ${t.stages} WHERE job_id = $1`, [jobId]);
    await client.query(
      `UPDATE ${t.jobs} SET status = 'queued', current_stage = 0, result = NULL, error = NULL, started_at = NULL,
              completed_at = NULL, run = run + 1, run_queued_at = now(), plugin_version = $2, updated_at = now()
       WHERE id = $1`,
      [jobId, plugin.version],
    );
    await addEvent(client, t, jobId, 'job_rerun', {
      message: `run ${row.run + 1}: the job runs again with the same parameters (run ${row.run} ended ${row.status})`,
      data: { run: row.run + 1, previous: { run: row.run, status: row.status, tasks: counts.tasks } },
    });
    await sendControl(machine.boss, client, { jobId, action: 'plan', stage: 1 });
  });
  return machine.requireJob(jobId);
}

/** The job's runs, oldest first; the last one is the current run. Empty for an unknown job. */
export async function listRuns(machine: CoreMachine, jobId: string, db: Queryable = machine.pool): Promise<JobRun[]> {
  const { t } = machine;
  const [{ rows: past }, { rows: current }] = await Promise.all([
    db.query(`SELECT * FROM ${runsTable(machine)} WHERE job_id = $1 ORDER BY run`, [jobId]),
    db.query(`SELECT * FROM ${t.jobs} WHERE id = $1`, [jobId]),
  ]);
  const job = current[0];
  if (!job) return [];
  const { rows: stages } = await db.query(
    `SELECT stage_index AS index, name, status, total, completed, failed FROM ${t.stages} WHERE job_id = $1 ORDER BY stage_index`,
    [jobId],
  );
  return [
    ...past.map((r) => ({
      run: r.run as number,
      status: r.status as JobStatus,
      current: false,
      pluginVersion: r.plugin_version as string,
      queuedAt: iso(r.queued_at)!,
      startedAt: iso(r.started_at),
      completedAt: iso(r.completed_at),
      tasks: r.tasks as number,
      retries: r.retries as number,
      stages: r.stages as JobRun['stages'],
      result: r.result ?? null,
      error: r.error ?? null,
    })),
    {
      run: job.run as number,
      status: job.status as JobStatus,
      current: true,
      pluginVersion: job.plugin_version as string,
      queuedAt: iso(job.run_queued_at ?? job.created_at)!,
      startedAt: iso(job.started_at),
      completedAt: iso(job.completed_at),
      tasks: null,
      retries: null,
      stages: stages as JobRun['stages'],
      result: job.result ?? null,
      error: job.error ?? null,
    },
  ];
}

/** A job's events (oldest first, after `afterId`), each with its run; only those of `run` when given. */
export async function runEvents(
  machine: CoreMachine,
  jobId: string,
  options: { afterId?: number; limit?: number; run?: number } = {},
): Promise<Array<JobEvent & { run: number }>> {
  await machine.requireJob(jobId);
  const args: unknown[] = [jobId, options.afterId ?? 0, Math.min(options.limit ?? 500, 5000)];
  const byRun = options.run !== undefined ? `AND run = $${args.push(options.run)}` : '';
  const { rows } = await machine.pool.query(
    `SELECT * FROM ${machine.t.events} WHERE job_id = $1 AND id > $2 ${byRun} ORDER BY id LIMIT $3`,
    args,
  );
  return rows.map((r) => ({ ...toEvent(r), run: r.run as number }));
}
