/**
 * The read side of the ledger: a job with its stages (and what its running stage waits for),
 * jobs and tasks by page, a job's timeline, the loaded job types. Every function takes the
 * engine record and only reads.
 */
import { z } from 'zod';
import type { JobStatus, TaskStatus } from './define-job.ts';
import { liveWorkers, type Engine } from './engine.ts';
import { CoreMachineError } from './errors.ts';
import { toEvent, toJobView, toTaskView, type JobEvent, type JobView, type Page, type TaskView } from './views.ts';

export interface ListJobsFilter {
  status?: JobStatus;
  type?: string;
  createdAfter?: string;
  createdBefore?: string;
  cursor?: string | null;
  limit?: number;
}

export interface ListTasksFilter {
  stage?: number;
  status?: TaskStatus;
  cursor?: string | null;
  limit?: number;
}

/** A loaded job type: description, stages and the JSON Schema of its parameters. */
export interface JobTypeInfo {
  type: string;
  version: string;
  description: string;
  stages: string[];
  parametersSchema: unknown;
}

type ReadEngine = Pick<Engine, 'pool' | 't' | 'config' | 'plugins'>;

const encodeCursor = (parts: unknown[]) => Buffer.from(JSON.stringify(parts)).toString('base64url');
function decodeCursor(cursor: string | null | undefined): unknown[] | null {
  if (!cursor) return null;
  try {
    const v = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8'));
    if (Array.isArray(v)) return v;
  } catch {
    /* fall through */
  }
  throw new CoreMachineError(
    'CM_ERR_INVALID_PARAMETERS',
    `Invalid cursor ${JSON.stringify(cursor)}: pass back the nextCursor of a previous page`,
    { issues: [{ path: 'cursor', message: 'invalid cursor' }] },
  );
}

function stageNames(engine: Pick<Engine, 'plugins'>, type: string): string[] {
  return engine.plugins.get(type)?.stages.map((s) => s.name) ?? [];
}

/** A job with its stages; a running one says what its current stage waits for. */
export async function getJob(engine: ReadEngine, jobId: string): Promise<JobView | null> {
  const { rows } = await engine.pool.query(`SELECT * FROM ${engine.t.jobs} WHERE id = $1`, [jobId]);
  if (!rows[0]) return null;
  const stages = await engine.pool.query(`SELECT * FROM ${engine.t.stages} WHERE job_id = $1 ORDER BY stage_index`, [
    jobId,
  ]);
  const view = toJobView(rows[0], stages.rows, stageNames(engine, rows[0].type));
  if (view.status === 'processing' || view.status === 'queued') await explainWaiting(engine, view);
  return view;
}

/** The job, or CM_ERR_JOB_NOT_FOUND. */
export async function requireJob(engine: ReadEngine, jobId: string): Promise<JobView> {
  const job = await getJob(engine, jobId);
  if (!job) throw new CoreMachineError('CM_ERR_JOB_NOT_FOUND', `No job with id ${jobId}`);
  return job;
}

/** Fills `waiting` on the running stage (and tells when no live worker serves the type). */
async function explainWaiting(engine: ReadEngine, view: JobView): Promise<void> {
  const live = await liveWorkers(engine).catch(() => null);
  const serving = live?.filter((w) => w.jobTypes.includes(view.type)) ?? null;
  const stage = view.stages.find((s) => s.index === view.currentStage && s.status === 'processing');
  if (!stage) return;
  const {
    rows: [q],
  } = await engine.pool.query(
    `SELECT count(*) FILTER (WHERE due_at > now())::int AS retry, min(due_at) FILTER (WHERE due_at > now()) AS next_due,
            count(*) FILTER (WHERE due_at <= now())::int AS due
     FROM ${engine.t.tasks} WHERE job_id = $1 AND stage_index = $2 AND status = 'queued'`,
    [view.id, stage.index],
  );
  const { rows: held } = await engine.pool.query(
    `SELECT worker_id, count(*)::int AS n, max(heartbeat_at) AS beat FROM ${engine.t.tasks}
     WHERE job_id = $1 AND stage_index = $2 AND status = 'processing' GROUP BY worker_id ORDER BY worker_id`,
    [view.id, stage.index],
  );
  const liveIds = new Set(live?.map((w) => w.id) ?? []);
  const running = held.map((r) => ({
    workerId: r.worker_id as string | null,
    workerLive: r.worker_id ? liveIds.has(r.worker_id) : false,
    tasks: r.n as number,
    lastHeartbeatAt: r.beat ? new Date(r.beat).toISOString() : null,
  }));
  const noLiveWorker = serving !== null && serving.length === 0;
  const parts: string[] = [];
  for (const r of running)
    parts.push(
      `${r.tasks} running on ${r.workerId ?? 'an unknown worker'}${r.workerLive ? '' : ' (not live: its lease will lapse and the task re-run)'}`,
    );
  if (q.due)
    parts.push(
      noLiveWorker
        ? `${q.due} queued, but no live worker serves ${view.type}: they wait until one starts`
        : `${q.due} queued, waiting for a free worker slot${capNote(engine, view.type, stage.name)}`,
    );
  if (q.retry) parts.push(`${q.retry} retrying, the next at ${new Date(q.next_due).toISOString()}`);
  stage.waiting = {
    retryScheduled: q.retry,
    nextRetryAt: q.next_due ? new Date(q.next_due).toISOString() : null,
    forWorkerSlot: noLiveWorker ? 0 : q.due,
    noLiveWorker,
    running,
    summary: parts.join('; ') || 'every task has settled; the next step is queued',
  };
}

/** The cluster-wide caps on a stage's tasks, as words (empty without any). */
function capNote(engine: Pick<Engine, 'config'>, type: string, stageName: string): string {
  const limits = engine.config.concurrencyLimits;
  const caps = [
    limits[type] !== undefined ? `${limits[type]} ${type} tasks` : null,
    limits[`${type}.${stageName}`] !== undefined ? `${limits[`${type}.${stageName}`]} of stage ${stageName}` : null,
  ].filter(Boolean);
  return caps.length ? ` (cluster-wide cap: at most ${caps.join(' and ')} at once)` : '';
}

/** Jobs, newest first, filtered by status, type and creation time; cursor-paginated. */
export async function listJobs(engine: ReadEngine, filter: ListJobsFilter = {}): Promise<Page<JobView>> {
  const limit = Math.min(Math.max(filter.limit ?? 20, 1), 200);
  const where: string[] = [];
  const args: unknown[] = [];
  const arg = (v: unknown) => {
    args.push(v);
    return `$${args.length}`;
  };
  if (filter.status) where.push(`status = ${arg(filter.status)}`);
  if (filter.type) where.push(`type = ${arg(filter.type)}`);
  if (filter.createdAfter) where.push(`created_at >= ${arg(filter.createdAfter)}`);
  if (filter.createdBefore) where.push(`created_at < ${arg(filter.createdBefore)}`);
  const cursor = decodeCursor(filter.cursor);
  if (cursor) where.push(`(created_at, id) < (${arg(cursor[0])}::timestamptz, ${arg(cursor[1])})`);
  const { rows } = await engine.pool.query(
    `SELECT * FROM ${engine.t.jobs} ${where.length ? 'WHERE ' + where.join(' AND ') : ''} ORDER BY created_at DESC, id DESC LIMIT ${limit + 1}`,
    args,
  );
  const page = rows.slice(0, limit);
  const ids = page.map((r) => r.id);
  const stages = ids.length
    ? (await engine.pool.query(`SELECT * FROM ${engine.t.stages} WHERE job_id = ANY($1) ORDER BY stage_index`, [ids]))
        .rows
    : [];
  const last = page[page.length - 1];
  return {
    items: page.map((r) =>
      toJobView(
        r,
        stages.filter((s) => s.job_id === r.id),
        stageNames(engine, r.type),
      ),
    ),
    nextCursor: rows.length > limit && last ? encodeCursor([new Date(last.created_at).toISOString(), last.id]) : null,
  };
}

/** A job's tasks by stage and status, in (stage, key) order; cursor-paginated. */
export async function listTasks(
  engine: ReadEngine,
  jobId: string,
  filter: ListTasksFilter = {},
): Promise<Page<TaskView>> {
  const job = await requireJob(engine, jobId);
  const limit = Math.min(Math.max(filter.limit ?? 100, 1), 1000);
  const args: unknown[] = [jobId];
  const arg = (v: unknown) => {
    args.push(v);
    return `$${args.length}`;
  };
  const where = ['job_id = $1'];
  if (filter.stage !== undefined) where.push(`stage_index = ${arg(filter.stage)}`);
  if (filter.status) where.push(`status = ${arg(filter.status)}`);
  const cursor = decodeCursor(filter.cursor);
  if (cursor) where.push(`(stage_index, key) > (${arg(cursor[0])}::int, ${arg(cursor[1])})`);
  const { rows } = await engine.pool.query(
    `SELECT * FROM ${engine.t.tasks} WHERE ${where.join(' AND ')} ORDER BY stage_index, key LIMIT ${limit + 1}`,
    args,
  );
  const page = rows.slice(0, limit);
  const last = page[page.length - 1];
  const names = stageNames(engine, job.type);
  return {
    items: page.map((r) => toTaskView(r, names)),
    nextCursor: rows.length > limit && last ? encodeCursor([last.stage_index, last.key]) : null,
  };
}

/** The job's timeline, oldest first, after event id `afterId`. */
export async function jobEvents(engine: ReadEngine, jobId: string, afterId = 0, limit = 500): Promise<JobEvent[]> {
  await requireJob(engine, jobId);
  const { rows } = await engine.pool.query(
    `SELECT * FROM ${engine.t.events} WHERE job_id = $1 AND id > $2 ORDER BY id LIMIT $3`,
    [jobId, afterId, Math.min(limit, 5000)],
  );
  return rows.map(toEvent);
}

/** Job types with descriptions, stages and the JSON Schema of their parameters. */
export function jobTypes(engine: Pick<Engine, 'plugins'>): JobTypeInfo[] {
  return [...engine.plugins.values()].map((p) => ({
    type: p.type,
    version: p.version,
    description: p.description,
    stages: p.stages.map((s) => s.name),
    parametersSchema: z.toJSONSchema(p.parameters, { io: 'input', unrepresentable: 'any' }),
  }));
}
