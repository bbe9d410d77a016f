/**
 * Ledger writes shared by the API side and the workers. Every function takes the caller's
 * transaction client: state changes and the queue messages they imply commit together.
 */
import type { PgBoss } from 'pg-boss';
import { bossDb, type Queryable } from './db.ts';
import type { StoredError } from './errors.ts';
import { metrics } from './metrics.ts';

export const CONTROL_QUEUE = 'cm.control';
export const taskQueue = (jobType: string) => `cm.task.${jobType}`;

export interface ControlMessage {
  jobId: string;
  action: 'plan' | 'aggregate';
  /** For `plan`: the 1-based stage to plan. */
  stage?: number;
}

export interface Tables {
  schema: string;
  jobs: string;
  stages: string;
  tasks: string;
  events: string;
  workers: string;
}

export function tables(quotedSchema: string, schema: string): Tables {
  return {
    schema,
    jobs: `${quotedSchema}.jobs`,
    stages: `${quotedSchema}.stages`,
    tasks: `${quotedSchema}.tasks`,
    events: `${quotedSchema}.job_events`,
    workers: `${quotedSchema}.workers`,
  };
}

export async function addEvent(
  db: Queryable,
  t: Tables,
  jobId: string,
  kind: string,
  extra: { stage?: number | null; taskId?: string | null; message?: string | null; data?: unknown } = {},
): Promise<void> {
  await db.query(
    `INSERT INTO ${t.events} (job_id, kind, stage_index, task_id, message, data) VALUES ($1, $2, $3, $4, $5, $6)`,
    [
      jobId,
      kind,
      extra.stage ?? null,
      extra.taskId ?? null,
      extra.message ?? null,
      extra.data === undefined ? null : JSON.stringify(extra.data),
    ],
  );
  metrics.event(kind, extra.message);
}

/** A task message: the ids of queued tasks to claim. Payloads stay in the ledger. */
export interface TaskMessage {
  taskIds: string[];
}

/**
 * Queues wake-up messages for tasks, `perMessage` task ids per message (light tasks travel in
 * groups; heavy ones one per message so that every worker gets a share), in the caller's
 * transaction.
 */
export async function sendTasks(
  boss: PgBoss,
  db: Queryable,
  jobType: string,
  taskIds: string[],
  options: { perMessage?: number; startAfter?: Date } = {},
): Promise<void> {
  if (!taskIds.length) return;
  const per = Math.max(1, options.perMessage ?? 1);
  const messages: Array<{ data: TaskMessage; startAfter?: Date }> = [];
  for (let i = 0; i < taskIds.length; i += per) {
    messages.push({
      data: { taskIds: taskIds.slice(i, i + per) },
      ...(options.startAfter ? { startAfter: options.startAfter } : {}),
    });
  }
  await boss.insert(taskQueue(jobType), messages, { db: bossDb(db) });
}

export async function sendControl(boss: PgBoss, db: Queryable, msg: ControlMessage): Promise<void> {
  await boss.send(CONTROL_QUEUE, msg as unknown as object, { db: bossDb(db) });
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
  await db.query(
    `UPDATE ${t.tasks} SET status = 'cancelled', completed_at = now() WHERE job_id = $1 AND status = 'queued'`,
    [jobId],
  );
  await db.query(
    `UPDATE ${t.stages} SET status = 'failed', completed_at = now() WHERE job_id = $1 AND status = 'processing'`,
    [jobId],
  );
  await addEvent(db, t, jobId, 'job_failed', {
    stage: null,
    taskId: error.taskId ?? null,
    message: `${error.code}: ${error.message}`,
    data: error,
  });
  return true;
}
