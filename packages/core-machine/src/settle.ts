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
import { addEvent, failJob, sendControl, sendTasks, type Tables } from './ledger.ts';

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
    `SELECT id, status FROM ${t.jobs} WHERE id = ANY($1) ORDER BY id FOR NO KEY UPDATE`,
    [[...new Set(input.map((e) => e.jobId))]],
  );
  const jobStatus = new Map(jobRows.map((r) => [r.id as string, r.status as string]));
  const entries = input.map((e) => reconcile(e, jobStatus.get(e.jobId)));
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
    for (const r of rows) {
      await sendTasks(
        boss,
        client,
        r.type,
        [r.id],
        r.delay_ms > 0 ? { startAfter: new Date(Date.now() + r.delay_ms) } : {},
      );
      if (!r.release) {
        await addEvent(client, t, r.job_id, 'task_retried', {
          stage: r.stage_index,
          taskId: r.id,
          message: `attempt ${r.attempts} failed (${r.error?.code}: ${r.error?.message}); retrying in ${r.delay_ms} ms`,
        });
      } else {
        await addEvent(client, t, r.job_id, 'task_released', {
          stage: r.stage_index,
          taskId: r.id,
          message: r.note ?? 'released by a worker shutting down (attempt refunded); queued again',
        });
      }
    }
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

  // Group by (job, stage) and visit in a fixed order so concurrent settles lock stage rows in
  // the same order (no deadlocks).
  const groups = new Map<
    string,
    { jobId: string; stage: number; completed: number; failed: Array<{ id: string; error: StoredError }> }
  >();
  for (const r of rows) {
    if (r.status === 'cancelled') continue;
    const k = `${r.job_id}|${String(r.stage_index).padStart(6, '0')}`;
    const g = groups.get(k) ?? {
      jobId: r.job_id as string,
      stage: r.stage_index as number,
      completed: 0,
      failed: [] as Array<{ id: string; error: StoredError }>,
    };
    if (r.status === 'completed') g.completed++;
    else g.failed.push({ id: r.id, error: r.error });
    groups.set(k, g);
  }
  for (const key of [...groups.keys()].sort()) {
    const g = groups.get(key)!;
    const {
      rows: [stageRow],
    } = await client.query(
      `UPDATE ${t.stages} s SET completed = s.completed + $3, failed = s.failed + $4
       FROM ${t.jobs} j WHERE s.job_id = $1 AND s.stage_index = $2 AND j.id = s.job_id
       RETURNING s.total, s.completed, s.failed, s.status, s.name, j.type, j.status AS job_status, j.total_stages`,
      [g.jobId, g.stage, g.completed, g.failed.length],
    );
    if (!stageRow) continue;
    const plugin = deps.plugins.get(stageRow.type);
    const stageDef = plugin?.stages[g.stage - 1];
    for (const f of g.failed) {
      await addEvent(client, t, g.jobId, 'task_failed', {
        stage: g.stage,
        taskId: f.id,
        message: `${f.error?.code}: ${f.error?.message}`,
        data: f.error,
      });
    }
    if (
      g.failed.length &&
      (stageDef?.onTaskFailure ?? 'fail_job') === 'fail_job' &&
      stageRow.job_status === 'processing'
    ) {
      const first = g.failed[0]!;
      await failJob(client, t, g.jobId, {
        code: first.error?.code ?? 'TASK_FAILED',
        message: first.error?.message ?? 'task failed',
        detail: first.error?.detail,
        taskId: first.id,
        stage: stageRow.name,
      });
      continue;
    }
    if (stageRow.status !== 'processing' || stageRow.job_status !== 'processing') continue;
    if (stageRow.completed + stageRow.failed < stageRow.total) continue;
    await completeStage(client, deps, g.jobId, g.stage, stageRow.total_stages, stageRow.failed);
  }
}

/** Closes a stage whose tasks have all settled and queues the job's next step. */
export async function completeStage(
  client: PoolClient,
  deps: SettleDeps,
  jobId: string,
  stage: number,
  totalStages: number,
  failed: number,
): Promise<void> {
  const { rowCount } = await client.query(
    `UPDATE ${deps.t.stages} SET status = 'completed', completed_at = now() WHERE job_id = $1 AND stage_index = $2 AND status = 'processing'`,
    [jobId, stage],
  );
  if (!rowCount) return; // already advanced by someone else
  await addEvent(client, deps.t, jobId, 'stage_completed', {
    stage,
    message: failed ? `${failed} task(s) failed; continuing` : null,
  });
  await sendControl(
    deps.boss,
    client,
    stage < totalStages ? { jobId, action: 'plan', stage: stage + 1 } : { jobId, action: 'aggregate' },
  );
}
