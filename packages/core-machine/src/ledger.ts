/**
 * Ledger writes shared by the API side and the workers. Every function takes the caller's
 * transaction client: state changes and the queue messages they imply commit together.
 */
import type { PgBoss } from 'pg-boss';
import { bossDb, type Queryable } from './db.ts';
import { metrics } from './metrics.ts';
import { writeActorEvent } from './actor.ts';

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
  await writeActorEvent(db, t.events, jobId, kind);
}

export interface LedgerEvent {
  jobId: string;
  kind: string;
  stage?: number | null;
  taskId?: string | null;
  message?: string | null;
  data?: unknown;
}

/** Writes many events in one statement (in the given order). */
export async function addEvents(db: Queryable, t: Tables, events: LedgerEvent[]): Promise<void> {
  if (!events.length) return;
  await db.query(
    `INSERT INTO ${t.events} (job_id, kind, stage_index, task_id, message, data)
     SELECT job_id, kind, stage_index, task_id, message, data
     FROM unnest($1::text[], $2::text[], $3::int[], $4::text[], $5::text[], $6::jsonb[])
          WITH ORDINALITY AS x(job_id, kind, stage_index, task_id, message, data, n)
     ORDER BY n`,
    [
      events.map((e) => e.jobId),
      events.map((e) => e.kind),
      events.map((e) => e.stage ?? null),
      events.map((e) => e.taskId ?? null),
      events.map((e) => e.message ?? null),
      events.map((e) => (e.data === undefined ? null : JSON.stringify(e.data))),
    ],
  );
  for (const e of events) metrics.event(e.kind, e.message);
  for (const e of events) await writeActorEvent(db, t.events, e.jobId, e.kind);
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
  await boss.send(CONTROL_QUEUE, msg, { db: bossDb(db) });
}

/** Queues many control messages in one statement, in the caller's transaction. */
export async function sendControls(boss: PgBoss, db: Queryable, msgs: ControlMessage[]): Promise<void> {
  if (!msgs.length) return;
  await boss.insert(
    CONTROL_QUEUE,
    msgs.map((data) => ({ data })),
    { db: bossDb(db) },
  );
}

/** Queues task messages (each its ids and optional start time) of one job type in one statement. */
export async function sendTaskMessages(
  boss: PgBoss,
  db: Queryable,
  jobType: string,
  messages: Array<{ taskIds: string[]; startAfter?: Date }>,
): Promise<void> {
  for (let i = 0; i < messages.length; i += 5_000) {
    await boss.insert(
      taskQueue(jobType),
      messages.slice(i, i + 5_000).map((m) => ({
        data: { taskIds: m.taskIds },
        ...(m.startAfter ? { startAfter: m.startAfter } : {}),
      })),
      { db: bossDb(db) },
    );
  }
}

/** Splits task ids into messages of `perMessage` ids each. */
export function taskMessages(taskIds: string[], perMessage = 1): Array<{ taskIds: string[] }> {
  const per = Math.max(1, perMessage);
  const out: Array<{ taskIds: string[] }> = [];
  for (let i = 0; i < taskIds.length; i += per) out.push({ taskIds: taskIds.slice(i, i + per) });
  return out;
}
