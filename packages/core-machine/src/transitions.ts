/**
 * Job and stage transitions: every change of a job's or a stage's status outside the batched
 * paths of a settle (settle.ts) and of a control step (advance.ts) happens here — cancel, retry,
 * failing a job, closing stages and taking the next step, and the stall sweep's repairs. Each
 * takes the caller's transaction client (or the engine record for cancel and retry, which open
 * their own) and records its event in the job's timeline.
 *
 * Stages close through one path: `closeStages` → `nextStep`, whoever closes them (a settle, a
 * plan with no tasks, a retry, the stall sweep), so `stage_completed` is always recorded and
 * the next step always queued in the same transaction.
 */
import { withTransaction, type PoolClient, type Queryable } from './db.ts';
import { pluginOf, type Engine } from './engine.ts';
import { CoreMachineError, type StoredError } from './errors.ts';
import { requireJob } from './jobs-view.ts';
import {
  addEvent,
  addEvents,
  sendControl,
  sendControls,
  sendTasks,
  type ControlMessage,
  type Tables,
} from './ledger.ts';
import { TERMINAL_JOB_STATUSES, type JobView } from './views.ts';

/** What a transition inside a caller's transaction needs of the engine. */
export type TransitionDeps = Pick<Engine, 'boss' | 't' | 'plugins'>;

/**
 * The step that follows a closed stage: plan the next one, or aggregate after the last. Settle,
 * retry, a plan with no tasks and the stall sweep all advance a job through it.
 */
export function nextStep(jobId: string, stage: number, totalStages: number): ControlMessage {
  return stage < totalStages ? { jobId, action: 'plan', stage: stage + 1 } : { jobId, action: 'aggregate' };
}

/** A stage whose tasks have all settled, to be closed (or just closed) and the job advanced. */
export interface StageToClose {
  jobId: string;
  stage: number;
  totalStages: number;
  failed: number;
}

/** For stages just closed: records `stage_completed` and queues each job's next step. */
export async function advanceClosed(client: PoolClient, deps: TransitionDeps, closed: StageToClose[]): Promise<void> {
  if (!closed.length) return;
  await addEvents(
    client,
    deps.t,
    closed.map((c) => ({
      jobId: c.jobId,
      kind: 'stage_completed',
      stage: c.stage,
      message: c.failed ? `${c.failed} task(s) failed; continuing` : null,
    })),
  );
  await sendControls(
    deps.boss,
    client,
    closed.map((c) => nextStep(c.jobId, c.stage, c.totalStages)),
  );
}

/**
 * Closes stages whose tasks have all settled (those still open) and queues each job's next
 * step: settle, retry, a plan with no tasks and the stall sweep close stages through this.
 */
export async function closeStages(client: PoolClient, deps: TransitionDeps, stages: StageToClose[]): Promise<void> {
  if (!stages.length) return;
  const { rows } = await client.query(
    `UPDATE ${deps.t.stages} s SET status = 'completed', completed_at = now()
     FROM unnest($1::text[], $2::int[]) AS u(job_id, stage)
     WHERE s.job_id = u.job_id AND s.stage_index = u.stage AND s.status = 'processing'
     RETURNING s.job_id, s.stage_index`,
    [stages.map((s) => s.jobId), stages.map((s) => s.stage)],
  );
  const closed = new Set(rows.map((r) => `${r.job_id}|${r.stage_index}`));
  await advanceClosed(
    client,
    deps,
    stages.filter((s) => closed.has(`${s.jobId}|${s.stage}`)),
  );
}

/** A stopped job's queued tasks never run (`cancelled`) and its open stage closes as `stage`; the tasks dropped. */
async function dropOpenWork(db: Queryable, t: Tables, jobId: string, stage: 'failed' | 'cancelled'): Promise<number> {
  const tasks = await db.query(
    `UPDATE ${t.tasks} SET status = 'cancelled', completed_at = now() WHERE job_id = $1 AND status = 'queued'`,
    [jobId],
  );
  await db.query(
    `UPDATE ${t.stages} SET status = $2, completed_at = now() WHERE job_id = $1 AND status = 'processing'`,
    [jobId, stage],
  );
  return tasks.rowCount ?? 0;
}

/**
 * Fails a job that is still running: records the error, cancels its queued tasks and closes
 * its open stage. Returns false when the job had already settled (nothing done).
 */
export async function failJob(db: Queryable, t: Tables, jobId: string, error: StoredError): Promise<boolean> {
  const { rowCount } = await db.query(
    `UPDATE ${t.jobs} SET status = 'failed', error = $2, completed_at = now(), updated_at = now()
     WHERE id = $1 AND status IN ('queued', 'processing')`,
    [jobId, JSON.stringify(error)],
  );
  if (!rowCount) return false;
  await dropOpenWork(db, t, jobId, 'failed');
  await addEvent(db, t, jobId, 'job_failed', {
    stage: null,
    taskId: error.taskId ?? null,
    message: `${error.code}: ${error.message}`,
    data: error,
  });
  return true;
}

/** Cancels a running job: queued tasks never run; running handlers see their abort signal. */
export async function cancelJob(engine: Engine, jobId: string): Promise<JobView> {
  const job = await requireJob(engine, jobId);
  if (TERMINAL_JOB_STATUSES.includes(job.status)) {
    throw new CoreMachineError(
      'CM_ERR_INVALID_STATE',
      `Job ${jobId} is already ${job.status}; only queued or processing jobs can be cancelled`,
    );
  }
  const { t } = engine;
  await withTransaction(engine.pool, async (client) => {
    const { rowCount } = await client.query(
      `UPDATE ${t.jobs} SET status = 'cancelled', completed_at = now(), updated_at = now() WHERE id = $1 AND status IN ('queued','processing')`,
      [jobId],
    );
    if (!rowCount) return;
    const dropped = await dropOpenWork(client, t, jobId, 'cancelled');
    await addEvent(client, t, jobId, 'job_cancelled', {
      message: `cancelled; ${dropped} queued task(s) dropped`,
    });
  });
  return requireJob(engine, jobId);
}

/**
 * Re-runs a failed (or cancelled) job from where it stopped: only the failed and cancelled
 * tasks of its current stage are queued again; completed tasks keep their results. A job that
 * failed while planning or aggregating has that step queued again.
 */
export async function retryJob(engine: Engine, jobId: string): Promise<JobView> {
  const job = await requireJob(engine, jobId);
  if (job.status !== 'failed' && job.status !== 'cancelled') {
    throw new CoreMachineError(
      'CM_ERR_INVALID_STATE',
      `Job ${jobId} is ${job.status}; only failed or cancelled jobs can be retried`,
    );
  }
  const plugin = pluginOf(engine, job.type);
  const { t } = engine;
  await withTransaction(engine.pool, async (client) => {
    const locked = await client.query(`SELECT status, current_stage FROM ${t.jobs} WHERE id = $1 FOR UPDATE`, [jobId]);
    if (locked.rows[0]?.status !== job.status) return; // someone else retried first
    const stage = locked.rows[0].current_stage as number;
    await client.query(
      `UPDATE ${t.jobs} SET status = 'processing', error = NULL, result = NULL, completed_at = NULL, updated_at = now() WHERE id = $1`,
      [jobId],
    );
    const stageRow =
      stage > 0
        ? (await client.query(`SELECT * FROM ${t.stages} WHERE job_id = $1 AND stage_index = $2`, [jobId, stage]))
            .rows[0]
        : undefined;
    let requeued = 0;
    if (!stageRow) {
      await sendControl(engine.boss, client, { jobId, action: 'plan', stage: Math.max(stage, 1) });
    } else if (stageRow.status === 'completed') {
      await sendControl(engine.boss, client, nextStep(jobId, stage, plugin.stages.length));
    } else {
      const { rows } = await client.query(
        `UPDATE ${t.tasks} SET status = 'queued', attempts = 0, error = NULL, output = NULL, lease_token = NULL, worker_id = NULL, completed_at = NULL, due_at = now()
         WHERE job_id = $1 AND stage_index = $2 AND status IN ('failed', 'cancelled') RETURNING id`,
        [jobId, stage],
      );
      requeued = rows.length;
      // Tasks still queued lost their messages while the job was not running (a claim skips the
      // tasks of a stopped job): they get new ones with the re-queued tasks.
      const { rows: waiting } = await client.query(
        `SELECT id FROM ${t.tasks} WHERE job_id = $1 AND stage_index = $2 AND status = 'queued' AND NOT (id = ANY($3))`,
        [jobId, stage, rows.map((r) => r.id as string)],
      );
      const { rows: counts } = await client.query(
        `UPDATE ${t.stages} SET status = 'processing', failed = 0, completed_at = NULL WHERE job_id = $1 AND stage_index = $2
         RETURNING total, completed`,
        [jobId, stage],
      );
      const toSend = [...rows, ...waiting].map((r) => r.id as string);
      if (toSend.length) {
        await sendTasks(engine.boss, client, job.type, toSend, { perMessage: plugin.queue?.tasksPerMessage ?? 1 });
      }
      // Every task may already have been completed (e.g. cancelled after the last task): the stage
      // closes through the same step as a settle (stage_completed recorded, next step queued).
      if (!toSend.length && counts[0]?.completed === counts[0]?.total) {
        await closeStages(client, engine, [{ jobId, stage, totalStages: plugin.stages.length, failed: 0 }]);
      }
    }
    await addEvent(client, t, jobId, 'job_retried', {
      stage,
      message: `retry requested; ${requeued} task(s) queued again`,
    });
  });
  return requireJob(engine, jobId);
}

// ---- the stall sweep's repairs (stall.ts finds and locks the rows; these change them) ---------

/** Queued tasks whose message was lost: due now and sent again, one `tasks_requeued` per job. */
export async function resendQueuedTasks(
  client: PoolClient,
  deps: TransitionDeps,
  tasks: Array<{ id: string; job_id: string; type: string }>,
  options: { stallSeconds: number; servedTypes: ReadonlySet<string> | null },
): Promise<void> {
  if (!tasks.length) return;
  const { t } = deps;
  await client.query(`UPDATE ${t.tasks} SET due_at = now() WHERE id = ANY($1)`, [tasks.map((r) => r.id)]);
  const byType = new Map<string, string[]>();
  for (const r of tasks) byType.set(r.type, [...(byType.get(r.type) ?? []), r.id]);
  for (const [type, ids] of byType)
    await sendTasks(deps.boss, client, type, ids, { perMessage: deps.plugins.get(type)?.queue?.tasksPerMessage ?? 1 });
  // Tasks of a type no live worker serves wait for one: the timeline says so, not just "sent again".
  const { stallSeconds: stall, servedTypes: served } = options;
  const jobs = [...new Map(tasks.map((r) => [r.job_id, r.type])).entries()];
  for (const [jobId, type] of jobs) {
    const n = tasks.filter((r) => r.job_id === jobId).length;
    await addEvent(client, t, jobId, 'tasks_requeued', {
      message:
        served && !served.has(type)
          ? `${n} queued task(s) waited ${stall} s: no live worker serves ${type}; they run when one starts`
          : `${n} queued task(s) had no message for ${stall} s; sent again`,
    });
  }
}

/** A job never planned, or whose stage completed without the next step: that step sent again. */
export async function resendControl(
  client: PoolClient,
  deps: TransitionDeps,
  job: { id: string; current_stage: number; total_stages: number },
  stallSeconds: number,
): Promise<void> {
  const next: ControlMessage =
    job.current_stage === 0
      ? { jobId: job.id, action: 'plan', stage: 1 }
      : nextStep(job.id, job.current_stage, job.total_stages);
  await client.query(`UPDATE ${deps.t.jobs} SET updated_at = now() WHERE id = $1`, [job.id]);
  await sendControl(deps.boss, client, next);
  await addEvent(client, deps.t, job.id, 'control_resent', {
    message: `no ${next.action} for ${stallSeconds} s; sent again`,
  });
}

/** An open stage of a running job with every task settled, as the stall sweep found it. */
export interface StuckStage {
  job_id: string;
  stage_index: number;
  name: string;
  total: number;
  type: string;
  total_stages: number;
  completed: number;
  failed: number;
  /** Ids of its cancelled tasks (cancel and retry crossed), or null. */
  cancelled: string[] | null;
}

/**
 * Repairs a stuck stage (its job row locked by the caller): cancelled tasks are queued again;
 * otherwise the counters are recounted and the stage closed, or the job failed, as a settle
 * would have done.
 */
export async function repairStage(client: PoolClient, deps: TransitionDeps, r: StuckStage): Promise<void> {
  const { t } = deps;
  const cancelled = r.cancelled ?? [];
  if (cancelled.length) {
    await client.query(
      `UPDATE ${t.tasks} SET status = 'queued', lease_token = NULL, worker_id = NULL, completed_at = NULL, due_at = now()
       WHERE id = ANY($1) AND status = 'cancelled'`,
      [cancelled],
    );
    await sendTasks(deps.boss, client, r.type, cancelled, {
      perMessage: deps.plugins.get(r.type)?.queue?.tasksPerMessage ?? 1,
    });
    await addEvent(client, t, r.job_id, 'tasks_requeued', {
      stage: r.stage_index,
      message: `${cancelled.length} cancelled task(s) in a running stage (cancel and retry crossed); queued again`,
    });
    return;
  }
  await client.query(`UPDATE ${t.stages} SET completed = $3, failed = $4 WHERE job_id = $1 AND stage_index = $2`, [
    r.job_id,
    r.stage_index,
    r.completed,
    r.failed,
  ]);
  await addEvent(client, t, r.job_id, 'stage_repaired', {
    stage: r.stage_index,
    message: `every task had settled but the stage was still open; counters recounted (${r.completed} completed, ${r.failed} failed of ${r.total})`,
  });
  const stageDef = deps.plugins.get(r.type)?.stages[r.stage_index - 1];
  if (r.failed > 0 && (stageDef?.onTaskFailure ?? 'fail_job') === 'fail_job') {
    await failJob(client, t, r.job_id, {
      code: 'TASK_FAILED',
      message: `${r.failed} task(s) of stage '${r.name}' failed`,
      stage: r.name,
    });
  } else {
    await closeStages(client, deps, [
      { jobId: r.job_id, stage: r.stage_index, totalStages: r.total_stages, failed: r.failed },
    ]);
  }
}
