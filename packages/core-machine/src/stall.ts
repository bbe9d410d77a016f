/**
 * The backstop behind "no job can hang": finds work whose queue message was lost (a message
 * that exhausted its deliveries, a queue purge, an operator deleting rows) and sends a new one.
 * Safe to run from every worker at once: every step it triggers is a compare-and-set, so a
 * duplicate message does nothing, and SKIP LOCKED keeps two sweeps off the same rows.
 */
import { withTransaction } from './db.ts';
import { liveWorkers, type Engine } from './engine.ts';
import { repairStage, resendControl, resendQueuedTasks, type StuckStage } from './transitions.ts';

/**
 * Every state a task, stage or job can be left in, and its repair (each one an event in the
 * job's timeline):
 * - queued task of a running job, due for `stallSeconds` (its message lost): sent again;
 * - job never planned, or whose stage finished without the next step: the step sent again;
 * - open stage of a running job with no queued or running task left: cancelled tasks (cancel
 *   and retry crossed) queued again; otherwise its counters recounted from the tasks and the
 *   stage closed (or the job failed) through the same step a settle takes;
 * - running task whose heartbeat stopped: the workers' lease sweep (worker.ts).
 */
export async function recoverStalled(machine: Engine): Promise<{ tasks: number; jobs: number; stages: number }> {
  const stages = await repairStages(machine);
  const { t, config } = machine;
  const stall = config.stallSeconds;
  return withTransaction(machine.pool, async (client) => {
    // Queued tasks of running jobs, due for longer than the stall window.
    const { rows: tasks } = await client.query(
      `SELECT tk.id, tk.job_id, tk.stage_index, j.type FROM ${t.tasks} tk JOIN ${t.jobs} j ON j.id = tk.job_id
       WHERE tk.status = 'queued' AND tk.due_at < now() - make_interval(secs => $1) AND j.status = 'processing'
       ORDER BY tk.due_at LIMIT 5000 FOR UPDATE OF tk SKIP LOCKED`,
      [stall],
    );
    if (tasks.length) {
      // Tasks of a type no live worker serves wait for one: the timeline says so.
      const live = await liveWorkers(machine).catch(() => null);
      await resendQueuedTasks(client, machine, tasks, {
        stallSeconds: stall,
        servedTypes: live ? new Set(live.flatMap((w) => w.jobTypes)) : null,
      });
    }
    // Jobs waiting for a control step: never planned, or whose current stage finished
    // without the next step being taken.
    const { rows: jobs } = await client.query(
      `SELECT j.id, j.current_stage, j.total_stages, s.status AS stage_status
       FROM ${t.jobs} j LEFT JOIN ${t.stages} s ON s.job_id = j.id AND s.stage_index = j.current_stage
       WHERE j.updated_at < now() - make_interval(secs => $1)
         AND ((j.status = 'queued' AND j.current_stage = 0) OR (j.status = 'processing' AND s.status = 'completed'))
         AND COALESCE(s.completed_at, j.created_at) < now() - make_interval(secs => $1)
       LIMIT 500 FOR UPDATE OF j SKIP LOCKED`,
      [stall],
    );
    for (const j of jobs) await resendControl(client, machine, j, stall);
    return { tasks: tasks.length, jobs: jobs.length, stages };
  });
}

/** Open stages of running jobs whose tasks are all settled: nothing else would ever close them. */
async function repairStages(machine: Engine): Promise<number> {
  const { t, config } = machine;
  // A settle closes a stage in the transaction that settles its last task, so a stage seen here
  // is stuck; the quiet window keeps clear of a settle still in flight.
  const quiet = Math.min(config.stallSeconds, 10);
  return withTransaction(machine.pool, async (client) => {
    // Candidates first (open stages of running jobs with no queued or running task left), then
    // the counts, so the tasks of busy stages are not aggregated on every sweep.
    const { rows } = await client.query<StuckStage>(
      `WITH cand AS MATERIALIZED (
         SELECT s.job_id, s.stage_index, s.name, s.total, s.started_at, j.type, j.total_stages
         FROM ${t.stages} s JOIN ${t.jobs} j ON j.id = s.job_id AND j.status = 'processing' AND j.current_stage = s.stage_index
         WHERE s.status = 'processing'
           AND NOT EXISTS (SELECT 1 FROM ${t.tasks} q WHERE q.job_id = s.job_id AND q.stage_index = s.stage_index
                           AND q.status IN ('queued', 'processing'))
         LIMIT 100)
       SELECT c.job_id, c.stage_index, c.name, c.total, c.type, c.total_stages,
              count(tk.id) FILTER (WHERE tk.status = 'completed')::int AS completed,
              count(tk.id) FILTER (WHERE tk.status = 'failed')::int AS failed,
              array_agg(tk.id) FILTER (WHERE tk.status = 'cancelled') AS cancelled
       FROM cand c LEFT JOIN ${t.tasks} tk ON tk.job_id = c.job_id AND tk.stage_index = c.stage_index
       GROUP BY c.job_id, c.stage_index, c.name, c.total, c.type, c.total_stages, c.started_at
       HAVING COALESCE(max(tk.completed_at), c.started_at) < now() - make_interval(secs => $1)`,
      [quiet],
    );
    let repaired = 0;
    for (const r of rows) {
      const locked = await client.query(
        `SELECT 1 FROM ${t.jobs} WHERE id = $1 AND status = 'processing' FOR NO KEY UPDATE SKIP LOCKED`,
        [r.job_id],
      );
      if (!locked.rowCount) continue;
      repaired++;
      await repairStage(client, machine, r);
    }
    return repaired;
  });
}
