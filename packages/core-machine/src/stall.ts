/**
 * The backstop behind "no job can hang": finds work whose queue message was lost (a message
 * that exhausted its deliveries, a queue purge, an operator deleting rows) and sends a new one.
 * Safe to run from every worker at once: every step it triggers is a compare-and-set, so a
 * duplicate message does nothing, and SKIP LOCKED keeps two sweeps off the same rows.
 */
import { withTransaction } from './db.ts';
import { addEvent, sendControl, sendTasks } from './ledger.ts';
import type { CoreMachine } from './machine.ts';

export async function recoverStalled(machine: CoreMachine): Promise<{ tasks: number; jobs: number }> {
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
      await client.query(`UPDATE ${t.tasks} SET due_at = now() WHERE id = ANY($1)`, [tasks.map((r) => r.id)]);
      const byType = new Map<string, string[]>();
      for (const r of tasks) byType.set(r.type, [...(byType.get(r.type) ?? []), r.id]);
      for (const [type, ids] of byType)
        await sendTasks(machine.boss, client, type, ids, {
          perMessage: machine.plugins.get(type)?.queue?.tasksPerMessage ?? 1,
        });
      const jobs = [...new Set(tasks.map((r) => r.job_id as string))];
      for (const jobId of jobs) {
        await addEvent(client, t, jobId, 'tasks_requeued', {
          message: `${tasks.filter((r) => r.job_id === jobId).length} queued task(s) had no message for ${stall} s; sent again`,
        });
      }
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
    for (const j of jobs) {
      const next =
        j.current_stage === 0
          ? { jobId: j.id, action: 'plan' as const, stage: 1 }
          : j.current_stage < j.total_stages
            ? { jobId: j.id, action: 'plan' as const, stage: j.current_stage + 1 }
            : { jobId: j.id, action: 'aggregate' as const };
      await client.query(`UPDATE ${t.jobs} SET updated_at = now() WHERE id = $1`, [j.id]);
      await sendControl(machine.boss, client, next);
      await addEvent(client, t, j.id, 'control_resent', { message: `no ${next.action} for ${stall} s; sent again` });
    }
    return { tasks: tasks.length, jobs: jobs.length };
  });
}
