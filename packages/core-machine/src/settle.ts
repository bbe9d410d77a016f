/**
 * Settling task runs. One transaction records a batch of outcomes, bumps the stage counters
 * and, when a batch settles the last task of a stage, advances the job: the stage is closed
 * and the next step (plan the next stage, or aggregate) is queued in the same transaction.
 *
 * Exactly-once: an outcome only counts when it matches the run's lease token and the task is
 * still `processing`, so a redelivered message, a duplicate run or a zombie worker whose lease
 * was taken away cannot record a result twice or move a counter twice. Counters live on the
 * stage row, so completion is decided without counting task rows (O(1) per batch, O(N) in all).
 */
import type { PgBoss } from 'pg-boss';
import type { PoolClient } from './db.ts';
import type { AnyJobDefinition } from './define-job.ts';
import type { StoredError } from './errors.ts';
import { addEvents, sendTaskMessages, type Tables } from './ledger.ts';
import { advanceClosed, failJob } from './transitions.ts';

interface SettlementBase {
  taskId: string;
  jobId: string;
  /** The run's lease token: an outcome only counts while the task still holds it. */
  lease: string;
}

export type Settlement =
  | (SettlementBase & { kind: 'completed'; output: unknown })
  | (SettlementBase & { kind: 'failed'; error: StoredError })
  | (SettlementBase & { kind: 'cancelled' })
  /** Run again after `delayMs` (a transient failure with attempts left). */
  | (SettlementBase & { kind: 'retry'; error: StoredError; delayMs: number })
  /** Give the task back without spending an attempt (worker shutting down). */
  | (SettlementBase & { kind: 'release'; note?: string });

/**
 * What an outcome becomes given the job's status at settle time (read under the job's row lock,
 * which cancel and retry take too, so it cannot change under the batch):
 * - a task that settles `cancelled` under a job that is running again (retried meanwhile) is
 *   queued again, attempt refunded: otherwise it would never count and the stage never close;
 * - a task that completes under a cancelled job, or asks for a retry under a job that is no
 *   longer running, is cancelled: never `completed` after the job said `cancelled` (a failed job
 *   keeps the results of tasks that finished anyway, so that its retry re-runs only the rest).
 */
export function reconcile(entry: Settlement, jobStatus: string | undefined): Settlement {
  const running = jobStatus === 'processing';
  if (entry.kind === 'cancelled' && running)
    return {
      kind: 'release',
      taskId: entry.taskId,
      jobId: entry.jobId,
      lease: entry.lease,
      note: 'the job was retried while this task was being cancelled; queued again',
    };
  // A failed job keeps the results of tasks that finished anyway: its retry re-runs only the rest.
  const keep = entry.kind === 'completed' && jobStatus === 'failed';
  if (!running && !keep && (entry.kind === 'completed' || entry.kind === 'retry' || entry.kind === 'release'))
    return { kind: 'cancelled', taskId: entry.taskId, jobId: entry.jobId, lease: entry.lease };
  return entry;
}

interface SettleDeps {
  boss: PgBoss;
  t: Tables;
  plugins: ReadonlyMap<string, AnyJobDefinition>;
}

export async function settleBatch(client: PoolClient, deps: SettleDeps, input: Settlement[]): Promise<void> {
  const { t, boss } = deps;
  if (!input.length) return;
  // Job rows first, in id order (cancel and retry lock the job row before its tasks too).
  const { rows: jobRows } = await client.query(
    `SELECT id, status, type, total_stages FROM ${t.jobs} WHERE id = ANY($1) ORDER BY id FOR NO KEY UPDATE`,
    [[...new Set(input.map((e) => e.jobId))]],
  );
  const jobs = new Map(
    jobRows.map((r) => [
      r.id as string,
      { status: r.status as string, type: r.type as string, totalStages: r.total_stages as number },
    ]),
  );
  const entries = input.map((e) => reconcile(e, jobs.get(e.jobId)?.status));
  const requeue = entries.filter((e) => e.kind === 'retry' || e.kind === 'release');
  if (requeue.length) {
    const { rows } = await client.query(
      `WITH x AS (SELECT * FROM jsonb_to_recordset($1::jsonb) AS x(id text, lease uuid, error jsonb, delay_ms int, release boolean, note text))
       UPDATE ${t.tasks} tk SET status = 'queued', lease_token = NULL, heartbeat_at = NULL, worker_id = NULL,
              due_at = now() + make_interval(secs => x.delay_ms / 1000.0),
              error = COALESCE(x.error, tk.error), attempts = CASE WHEN x.release THEN tk.attempts - 1 ELSE tk.attempts END
       FROM x, ${t.jobs} j
       WHERE tk.id = x.id AND tk.lease_token = x.lease AND tk.status = 'processing' AND j.id = tk.job_id
       RETURNING tk.id, tk.job_id, tk.stage_index, tk.attempts, j.type, x.delay_ms, x.release, x.error, x.note`,
      [
        JSON.stringify(
          requeue.map((e) => ({
            id: e.taskId,
            lease: e.lease,
            error: e.kind === 'retry' ? e.error : null,
            delay_ms: e.kind === 'retry' ? e.delayMs : 0,
            release: e.kind === 'release',
            note: e.kind === 'release' ? (e.note ?? null) : null,
          })),
        ),
      ],
    );
    const byType = new Map<string, Array<{ taskIds: string[]; startAfter?: Date }>>();
    for (const r of rows) {
      const list = byType.get(r.type) ?? [];
      list.push({ taskIds: [r.id], ...(r.delay_ms > 0 ? { startAfter: new Date(Date.now() + r.delay_ms) } : {}) });
      byType.set(r.type, list);
    }
    for (const [type, messages] of byType) await sendTaskMessages(boss, client, type, messages);
    await addEvents(
      client,
      t,
      rows.map((r) =>
        r.release
          ? {
              jobId: r.job_id,
              kind: 'task_released',
              stage: r.stage_index,
              taskId: r.id,
              message: r.note ?? 'released by a worker shutting down (attempt refunded); queued again',
            }
          : {
              jobId: r.job_id,
              kind: 'task_retried',
              stage: r.stage_index,
              taskId: r.id,
              message: `attempt ${r.attempts} failed (${r.error?.code}: ${r.error?.message}); retrying in ${r.delay_ms} ms`,
            },
      ),
    );
  }

  const finals = entries.filter((e) => e.kind === 'completed' || e.kind === 'failed' || e.kind === 'cancelled');
  if (!finals.length) return;
  const { rows } = await client.query(
    `WITH x AS (SELECT * FROM jsonb_to_recordset($1::jsonb) AS x(id text, lease uuid, status text, output jsonb, error jsonb))
     UPDATE ${t.tasks} tk SET status = x.status, output = x.output, error = x.error, completed_at = now(),
            lease_token = NULL, worker_id = NULL, progress = CASE WHEN x.status = 'completed' THEN 1 ELSE tk.progress END
     FROM x WHERE tk.id = x.id AND tk.lease_token = x.lease AND tk.status = 'processing'
     RETURNING tk.id, tk.job_id, tk.stage_index, tk.status, tk.error`,
    [
      JSON.stringify(
        finals.map((e) => ({
          id: e.taskId,
          lease: e.lease,
          status: e.kind,
          output: e.kind === 'completed' ? (e.output ?? null) : null,
          error: e.kind === 'failed' ? e.error : null,
        })),
      ),
    ],
  );

  // Counters per (job, stage).
  interface Group {
    jobId: string;
    stage: number;
    completed: number;
    failed: Array<{ id: string; error: StoredError }>;
  }
  const groups = new Map<string, Group>();
  for (const r of rows) {
    if (r.status === 'cancelled') continue;
    const k = `${r.job_id}|${r.stage_index}`;
    const g: Group = groups.get(k) ?? { jobId: r.job_id, stage: r.stage_index, completed: 0, failed: [] };
    if (r.status === 'completed') g.completed++;
    else g.failed.push({ id: r.id, error: r.error });
    groups.set(k, g);
  }
  if (!groups.size) return;
  // A failure under the stage's `fail_job` policy fails the job (and no stage of it closes).
  const failing = new Map<string, { group: Group; name: string }>();
  for (const g of groups.values()) {
    const job = jobs.get(g.jobId);
    const stageDef = job ? deps.plugins.get(job.type)?.stages[g.stage - 1] : undefined;
    if (g.failed.length && (stageDef?.onTaskFailure ?? 'fail_job') === 'fail_job' && job?.status === 'processing')
      if (!failing.has(g.jobId)) failing.set(g.jobId, { group: g, name: stageDef?.name ?? String(g.stage) });
  }
  // Stage rows locked in (job, stage) order first, so concurrent settles cannot deadlock; their
  // status before the update tells which stages this batch closes. Then one statement bumps the
  // counters and closes every stage whose last task this batch settled.
  const list = [...groups.values()];
  const { rows: before } = await client.query(
    `SELECT s.job_id, s.stage_index, s.status FROM ${t.stages} s
     JOIN unnest($1::text[], $2::int[]) AS u(job_id, stage) ON s.job_id = u.job_id AND s.stage_index = u.stage
     ORDER BY s.job_id, s.stage_index FOR NO KEY UPDATE OF s`,
    [list.map((g) => g.jobId), list.map((g) => g.stage)],
  );
  const wasOpen = new Set(before.filter((r) => r.status === 'processing').map((r) => `${r.job_id}|${r.stage_index}`));
  const { rows: stageRows } = await client.query(
    `WITH x AS (SELECT * FROM jsonb_to_recordset($1::jsonb) AS x(job_id text, stage int, completed int, failed int, may_close boolean))
     UPDATE ${t.stages} s SET completed = s.completed + x.completed, failed = s.failed + x.failed,
       status = CASE WHEN x.may_close AND s.status = 'processing' AND s.completed + x.completed + s.failed + x.failed >= s.total
                     THEN 'completed' ELSE s.status END,
       completed_at = CASE WHEN x.may_close AND s.status = 'processing' AND s.completed + x.completed + s.failed + x.failed >= s.total
                     THEN now() ELSE s.completed_at END
     FROM x WHERE s.job_id = x.job_id AND s.stage_index = x.stage
     RETURNING s.job_id, s.stage_index, s.status, s.failed`,
    [
      JSON.stringify(
        list.map((g) => ({
          job_id: g.jobId,
          stage: g.stage,
          completed: g.completed,
          failed: g.failed.length,
          may_close: jobs.get(g.jobId)?.status === 'processing' && !failing.has(g.jobId),
        })),
      ),
    ],
  );
  const known = new Set(stageRows.map((r) => `${r.job_id}|${r.stage_index}`));
  await addEvents(
    client,
    t,
    [...groups.values()]
      .filter((g) => known.has(`${g.jobId}|${g.stage}`))
      .flatMap((g) =>
        g.failed.map((f) => ({
          jobId: g.jobId,
          kind: 'task_failed',
          stage: g.stage,
          taskId: f.id,
          message: `${f.error?.code}: ${f.error?.message}`,
          data: f.error,
        })),
      ),
  );
  for (const [jobId, { group, name }] of failing) {
    if (!known.has(`${jobId}|${group.stage}`)) continue;
    const first = group.failed[0]!;
    await failJob(client, t, jobId, {
      code: first.error?.code ?? 'TASK_FAILED',
      message: first.error?.message ?? 'task failed',
      detail: first.error?.detail,
      taskId: first.id,
      stage: name,
    });
  }
  await advanceClosed(
    client,
    deps,
    stageRows
      .filter((r) => r.status === 'completed' && wasOpen.has(`${r.job_id}|${r.stage_index}`))
      .map((r) => ({
        jobId: r.job_id,
        stage: r.stage_index,
        totalStages: jobs.get(r.job_id)?.totalStages ?? r.stage_index,
        failed: r.failed,
      })),
  );
}
