/**
 * The worker runtime: fetches task messages per job type and control messages, claims tasks
 * in the ledger, runs handlers with a heartbeat and an abort signal, settles their outcomes in
 * batches and sweeps expired leases (tasks whose worker died). Any number of workers, in any
 * number of processes, can run against one database.
 */
import { aggregateJob, planStage } from './advance.ts';
import { withTransaction } from './db.ts';
import type { AnyJobDefinition, StageDefinition } from './define-job.ts';
import { abortReason, classifyError, isAbortReason, toStoredError, type StoredError } from './errors.ts';
import { addEvent, CONTROL_QUEUE, sendTasks, taskQueue, type ControlMessage, type TaskMessage } from './ledger.ts';
import type { CoreMachine } from './machine.ts';
import { settleBatch, type Settlement } from './settle.ts';
import { recoverStalled } from './stall.ts';
import { zodIssues } from './machine.ts';

export interface WorkerOptions {
  /** Job types this worker runs tasks for (default: all loaded plugins). */
  jobTypes?: string[];
  /** Whether this worker also plans stages and aggregates jobs (default true). */
  control?: boolean;
}

interface Running {
  taskId: string;
  jobId: string;
  lease: string;
  abort: AbortController;
  progress: { fraction: number; note: string | null } | null;
}

interface ClaimedRow {
  id: string;
  job_id: string;
  stage_index: number;
  key: string;
  input: unknown;
  attempts: number;
  max_attempts: number;
  lease_token: string;
  type: string;
  parameters: Record<string, unknown>;
}

/** The part of a pg-boss job a worker reads. */
interface Job<T> {
  data: T;
  signal: AbortSignal;
}

const SETTLE_BATCH = 500;

export function messagesPerFetch(tasks: number, tasksPerMessage: number): number {
  const messages = Math.max(1, Math.floor(tasks / tasksPerMessage));
  return tasksPerMessage > 1 ? Math.max(2, messages) : messages;
}
const DEADLOCK = '40P01';
const SERIALIZATION = '40001';

export class Worker {
  private readonly machine: CoreMachine;
  private readonly options: WorkerOptions;
  private readonly running = new Map<string, Running>();
  private readonly queues: string[] = [];
  private readonly timers: NodeJS.Timeout[] = [];
  private readonly stopListeners: Array<() => void> = [];
  private pending: Array<{ entry: Settlement; resolve: () => void; reject: (e: unknown) => void }> = [];
  private flushing: Promise<void> | null = null;
  private stopped = false;

  constructor(machine: CoreMachine, options: WorkerOptions) {
    this.machine = machine;
    this.options = options;
  }

  onStop(fn: () => void): void {
    this.stopListeners.push(fn);
  }

  get runningCount(): number {
    return this.running.size;
  }

  async start(): Promise<void> {
    const { boss, config } = this.machine;
    if (this.options.control !== false) {
      await boss.work<ControlMessage>(
        CONTROL_QUEUE,
        {
          batchSize: 1,
          localConcurrency: 2,
          pollingIntervalSeconds: config.pollingIntervalSeconds,
          notifyPollingIntervalSeconds: config.pollingIntervalSeconds,
        } as never,
        (jobs: Job<ControlMessage>[]) => this.handleControl(jobs),
      );
      this.queues.push(CONTROL_QUEUE);
    }
    const types = this.options.jobTypes ?? [...this.machine.plugins.keys()];
    for (const type of types) {
      const plugin = this.machine.plugin(type);
      const name = taskQueue(type);
      await boss.work<TaskMessage>(
        name,
        {
          // batchSize counts tasks; a message may carry several. pg-boss bursts (fetches again at
          // once after a full batch) only for batches of 2 or more messages.
          batchSize: messagesPerFetch(plugin.queue?.batchSize ?? config.batchSize, plugin.queue?.tasksPerMessage ?? 1),
          localConcurrency: plugin.queue?.concurrency ?? config.concurrency,
          // NOTIFY wakes workers for new messages; delayed retries become due silently, so the
          // backstop poll must stay short.
          pollingIntervalSeconds: config.pollingIntervalSeconds,
          notifyPollingIntervalSeconds: config.pollingIntervalSeconds,
          burstWhenBatchFull: true,
        } as never,
        (jobs: Job<TaskMessage>[]) => this.handleTasks(plugin, jobs),
      );
      this.queues.push(name);
    }
    const beat = Math.max(250, Math.floor((config.leaseSeconds * 1000) / 3));
    this.timers.push(
      setInterval(
        () =>
          void this.heartbeat().catch((e) =>
            this.machine.log.warn('heartbeat failed', { error: (e as Error).message }),
          ),
        beat,
      ),
    );
    this.timers.push(
      setInterval(
        () => void this.sweep().catch((e) => this.machine.log.warn('sweep failed', { error: (e as Error).message })),
        config.sweepIntervalMs,
      ),
    );
    const stallEvery = Math.max(1_000, Math.min(60_000, (config.stallSeconds * 1000) / 2));
    this.timers.push(
      setInterval(
        () =>
          void recoverStalled(this.machine).catch((e) =>
            this.machine.log.warn('stall recovery failed', { error: (e as Error).message }),
          ),
        stallEvery,
      ),
    );
  }

  /** Stops fetching, gives running tasks back to the queue, and waits for settlements. */
  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    for (const t of this.timers) clearInterval(t);
    for (const r of this.running.values()) r.abort.abort(abortReason('shutdown'));
    await Promise.all(this.queues.map((q) => this.machine.boss.offWork(q, { wait: true } as never).catch(() => {})));
    await this.flush();
    for (const fn of this.stopListeners) fn();
  }

  // ---- control: plan and aggregate ---------------------------------------------------------

  private async handleControl(jobs: Job<ControlMessage>[]): Promise<void> {
    for (const job of jobs) {
      const msg = job.data;
      if (msg.action === 'plan') await planStage(this.machine, msg.jobId, msg.stage ?? 1, job.signal);
      else await aggregateJob(this.machine, msg.jobId);
    }
  }

  // ---- tasks -------------------------------------------------------------------------------

  private async handleTasks(plugin: AnyJobDefinition, jobs: Job<TaskMessage>[]): Promise<void> {
    const ids = [...new Set(jobs.flatMap((j) => j.data.taskIds ?? []))];
    const { t } = this.machine;
    // Claim: only queued tasks of running jobs; the row lock makes concurrent claims of the same
    // task (duplicate messages) exclusive, and the fresh lease token fences out older runs.
    const { rows } = await this.machine.pool.query<ClaimedRow>(
      `UPDATE ${t.tasks} tk SET status = 'processing', attempts = tk.attempts + 1, lease_token = gen_random_uuid(),
              heartbeat_at = now(), started_at = COALESCE(tk.started_at, now()), progress = NULL, progress_note = NULL
       FROM ${t.jobs} j
       WHERE tk.id = ANY($1) AND tk.status = 'queued' AND j.id = tk.job_id AND j.status = 'processing'
       RETURNING tk.id, tk.job_id, tk.stage_index, tk.key, tk.input, tk.attempts, tk.max_attempts, tk.lease_token, j.type, j.parameters`,
      [ids],
    );
    try {
      await Promise.all(rows.map((row) => this.runTask(plugin, row)));
    } finally {
      if (jobs.length > 0) this.fetchAgainAtOnce(taskQueue(plugin.type));
    }
  }

  /**
   * After a batch that is not "full" (every batch at batch size 1), pg-boss waits out its polling
   * interval before fetching again, even with more messages queued: a fan-out stage of tasks
   * shorter than the interval then ran one wave per interval (~0.3 s idle between waves of
   * 25,000-feature ingest chunks). A worker that just ran tasks fetches again at once instead; an
   * empty fetch resumes normal polling, so this never loops on an empty queue.
   */
  private fetchAgainAtOnce(queue: string): void {
    if (this.stopped) return;
    const { boss } = this.machine;
    for (const w of boss.getWipData() as Array<{ id: string; name: string }>) {
      if (w.name === queue) boss.notifyWorker(w.id);
    }
  }

  private async runTask(plugin: AnyJobDefinition, row: ClaimedRow): Promise<void> {
    const stage = plugin.stages[row.stage_index - 1] as StageDefinition | undefined;
    const abort = new AbortController();
    const running: Running = { taskId: row.id, jobId: row.job_id, lease: row.lease_token, abort, progress: null };
    this.running.set(row.id, running);
    const log = this.machine.log;
    let entry: Settlement;
    try {
      if (!stage)
        throw Object.assign(new Error(`job type ${row.type} has no stage ${row.stage_index}`), {
          code: 'CM_ERR_INVALID_STATE',
        });
      const output = await stage.handler(row.input, {
        jobId: row.job_id,
        jobType: row.type,
        taskId: row.id,
        key: row.key,
        stage: { index: row.stage_index, name: stage.name },
        attempt: row.attempts,
        params: row.parameters,
        signal: abort.signal,
        log,
        db: this.machine.pool,
        services: this.machine.services,
        progress: (fraction, note) => {
          running.progress = { fraction: Math.min(1, Math.max(0, fraction)), note: note ?? null };
        },
        predecessor: () => this.predecessor(row),
      });
      const parsed = stage.output.safeParse(output);
      if (!parsed.success) {
        entry = {
          kind: 'failed',
          taskId: row.id,
          lease: row.lease_token,
          error: {
            code: 'CM_ERR_INVALID_OUTPUT',
            message: `handler of stage '${stage.name}' returned an invalid output: ${zodIssues(parsed.error, 'output')
              .map((x) => `${x.path}: ${x.message}`)
              .join('; ')}`,
          },
        };
      } else {
        entry = { kind: 'completed', taskId: row.id, lease: row.lease_token, output: parsed.data };
      }
    } catch (err) {
      entry = this.failure(row, stage, err, abort.signal);
    } finally {
      this.running.delete(row.id);
    }
    await this.settle(entry);
  }

  private failure(row: ClaimedRow, stage: StageDefinition | undefined, err: unknown, signal: AbortSignal): Settlement {
    const lease = row.lease_token;
    if (signal.aborted && isAbortReason(signal.reason)) {
      const kind = signal.reason.kind;
      if (kind === 'cancelled' || kind === 'job_failed') return { kind: 'cancelled', taskId: row.id, lease };
      if (kind === 'shutdown') return { kind: 'release', taskId: row.id, lease };
      if (kind === 'timeout') err = signal.reason;
    }
    if (!classifyError(err)) {
      // Unclassified: the stack goes to the log (never into the ledger), with the ids to find it.
      this.machine.log.warn('task threw an unclassified error', {
        taskId: row.id,
        jobId: row.job_id,
        attempt: row.attempts,
        stack: err instanceof Error ? err.stack : String(err),
      });
    }
    const stored = toStoredError(err);
    const error: StoredError = {
      code: stored.code,
      message: stored.message,
      ...(stored.detail !== undefined ? { detail: stored.detail } : {}),
    };
    if (stored.permanent || row.attempts >= row.max_attempts) {
      this.machine.log.warn('task failed', {
        taskId: row.id,
        jobId: row.job_id,
        code: error.code,
        error: error.message,
        attempts: row.attempts,
        permanent: stored.permanent,
      });
      return { kind: 'failed', taskId: row.id, lease, error };
    }
    return {
      kind: 'retry',
      taskId: row.id,
      lease,
      error,
      delayMs: this.machine.retryDelayMs(row.attempts, stage?.retry),
    };
  }

  private async predecessor(row: ClaimedRow): Promise<unknown> {
    if (row.stage_index <= 1) return null;
    const { rows } = await this.machine.pool.query(
      `SELECT output FROM ${this.machine.t.tasks} WHERE job_id = $1 AND stage_index = $2 AND key = $3 AND status = 'completed'`,
      [row.job_id, row.stage_index - 1, row.key],
    );
    return rows[0]?.output ?? null;
  }

  // ---- batched settlement ------------------------------------------------------------------

  private settle(entry: Settlement): Promise<void> {
    return new Promise((resolve, reject) => {
      this.pending.push({ entry, resolve, reject });
      if (!this.flushing) this.flushing = this.flushLoop();
    });
  }

  private async flush(): Promise<void> {
    while (this.flushing) await this.flushing;
  }

  private async flushLoop(): Promise<void> {
    // Outcomes that arrive while a batch is being written wait for the next one: under load this
    // groups hundreds of settlements per transaction; when idle a batch is a single outcome.
    await new Promise((r) => setImmediate(r));
    try {
      while (this.pending.length) {
        const batch = this.pending.splice(0, SETTLE_BATCH);
        try {
          await this.withRetry(() =>
            withTransaction(this.machine.pool, (client) =>
              settleBatch(
                client,
                this.machine,
                batch.map((b) => b.entry),
              ),
            ),
          );
          for (const b of batch) b.resolve();
        } catch (err) {
          this.machine.log.error('settle failed', { error: (err as Error).message, tasks: batch.length });
          for (const b of batch) b.reject(err);
        }
      }
    } finally {
      this.flushing = null;
    }
  }

  private async withRetry<T>(fn: () => Promise<T>): Promise<T> {
    for (let attempt = 1; ; attempt++) {
      try {
        return await fn();
      } catch (err) {
        const code = (err as { code?: string }).code;
        if ((code !== DEADLOCK && code !== SERIALIZATION) || attempt >= 5) throw err;
        await new Promise((r) => setTimeout(r, 20 * attempt + Math.random() * 50));
      }
    }
  }

  // ---- heartbeat and lease sweep -----------------------------------------------------------

  private async heartbeat(): Promise<void> {
    if (!this.running.size) return;
    const list = [...this.running.values()];
    const { rows } = await this.machine.pool.query(
      `WITH x AS (SELECT * FROM jsonb_to_recordset($1::jsonb) AS x(id text, lease uuid, progress real, note text))
       UPDATE ${this.machine.t.tasks} tk SET heartbeat_at = now(), progress = COALESCE(x.progress, tk.progress), progress_note = COALESCE(x.note, tk.progress_note)
       FROM x, ${this.machine.t.jobs} j
       WHERE tk.id = x.id AND tk.lease_token = x.lease AND tk.status = 'processing' AND j.id = tk.job_id
       RETURNING tk.id, j.status AS job_status`,
      [
        JSON.stringify(
          list.map((r) => ({
            id: r.taskId,
            lease: r.lease,
            progress: r.progress?.fraction ?? null,
            note: r.progress?.note ?? null,
          })),
        ),
      ],
    );
    const alive = new Map(rows.map((r) => [r.id as string, r.job_status as string]));
    for (const r of list) {
      if (!this.running.has(r.taskId)) continue;
      const jobStatus = alive.get(r.taskId);
      if (jobStatus === undefined) r.abort.abort(abortReason('lease_lost'));
      else if (jobStatus === 'cancelled') r.abort.abort(abortReason('cancelled'));
      else if (jobStatus === 'failed') r.abort.abort(abortReason('job_failed'));
    }
  }

  /**
   * Re-queues tasks whose heartbeat stopped (their worker died) or, when they have no attempt
   * left, settles them as failed. SKIP LOCKED lets many workers sweep at once without overlap.
   */
  private async sweep(): Promise<void> {
    const { t } = this.machine;
    await withTransaction(this.machine.pool, async (client) => {
      const { rows } = await client.query(
        `SELECT tk.id, tk.job_id, tk.stage_index, tk.lease_token, tk.attempts, tk.max_attempts, j.type, j.status AS job_status
         FROM ${t.tasks} tk JOIN ${t.jobs} j ON j.id = tk.job_id
         WHERE tk.status = 'processing' AND tk.heartbeat_at < now() - make_interval(secs => tk.lease_seconds)
         ORDER BY tk.heartbeat_at LIMIT 500 FOR UPDATE OF tk SKIP LOCKED`,
      );
      if (!rows.length) return;
      const error = (r: { attempts: number }): StoredError => ({
        code: 'TASK_LEASE_EXPIRED',
        message: `no heartbeat for the task's lease; its worker presumably died during attempt ${r.attempts}`,
      });
      const entries: Settlement[] = [];
      const requeue: typeof rows = [];
      for (const r of rows) {
        if (r.job_status !== 'processing') entries.push({ kind: 'cancelled', taskId: r.id, lease: r.lease_token });
        else if (r.attempts >= r.max_attempts)
          entries.push({ kind: 'failed', taskId: r.id, lease: r.lease_token, error: error(r) });
        else requeue.push(r);
      }
      if (requeue.length) {
        await client.query(
          `UPDATE ${t.tasks} SET status = 'queued', lease_token = NULL, heartbeat_at = NULL, due_at = now() WHERE id = ANY($1)`,
          [requeue.map((r) => r.id)],
        );
        for (const r of requeue) {
          await addEvent(client, t, r.job_id, 'task_lease_expired', {
            stage: r.stage_index,
            taskId: r.id,
            message: error(r).message + '; queued again',
          });
        }
        const byType = new Map<string, string[]>();
        for (const r of requeue) byType.set(r.type, [...(byType.get(r.type) ?? []), r.id]);
        for (const [type, ids] of byType) await sendTasks(this.machine.boss, client, type, ids);
      }
      if (entries.length) await settleBatch(client, this.machine, entries);
    });
  }
}
