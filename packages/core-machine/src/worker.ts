/**
 * The worker runtime: fetches task messages per job type and control messages, claims tasks
 * in the ledger, runs handlers with a heartbeat and an abort signal, settles their outcomes in
 * batches and sweeps expired leases (tasks whose worker died). Any number of workers, in any
 * number of processes, can run against one database.
 */
import { aggregateJobs, loadJobs, planStages, stageIndexOf } from './advance.ts';
import { capsOf, claimTasks, type ClaimedRow } from './claim.ts';
import { ControlLocks } from './control-lock.ts';
import { mkdir, readdir, rm } from 'node:fs/promises';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { isTransientDbError, withTransaction } from './db.ts';
import type { AnyJobDefinition, StageDefinition, TaskContext } from './define-job.ts';
import { abortReason, classifyError, isAbortReason, toStoredError, type StoredError } from './errors.ts';
import { addEvent, CONTROL_QUEUE, sendTasks, taskQueue, type ControlMessage, type TaskMessage } from './ledger.ts';
import { pluginOf, retryDelayMs, zodIssues, type Engine } from './engine.ts';
import { settleBatch, type Settlement } from './settle.ts';
import { recoverStalled } from './stall.ts';
import { taskLogFields, withFields } from './log.ts';
import { metrics } from './metrics.ts';

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
  /** The stage's lease: the task heartbeats every third of it. */
  leaseMs: number;
  lastBeat: number;
  abort: AbortController;
  progress: { fraction: number; note: string | null } | null;
  /** The handler is done; its outcome is being written (it keeps heartbeating until then). */
  settling: boolean;
}

export interface StopOptions {
  /**
   * Seconds running tasks may go on (heartbeating) before they are aborted and released, attempt
   * refunded. Default 0: abort at once. `shutdown()` uses CM_SHUTDOWN_GRACE_SECONDS.
   */
  graceSeconds?: number;
}

/** The part of a pg-boss job a worker reads. */
interface Job<T> {
  data: T;
  signal: AbortSignal;
}

const SETTLE_BATCH = 500;
const CONTROL_BATCH = 100;

export function messagesPerFetch(tasks: number, tasksPerMessage: number): number {
  const messages = Math.max(1, Math.floor(tasks / tasksPerMessage));
  return tasksPerMessage > 1 ? Math.max(2, messages) : messages;
}
const TICK_MS = 100;
/** Parent of every worker's temporary folders on this host: `<tmp>/coremachine-tasks/<pid>-<id>`. */
export const TASK_TMP_ROOT = join(tmpdir(), 'coremachine-tasks');

function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Removes the temporary folders of worker processes of this host that are gone; returns them. */
export async function sweepDeadTempDirs(root = TASK_TMP_ROOT): Promise<string[]> {
  const entries = await readdir(root).catch(() => [] as string[]);
  const dead = entries.filter((name) => {
    const pid = Number(name.split('-')[0]);
    return Number.isInteger(pid) && pid > 0 && pid !== process.pid && !processAlive(pid);
  });
  await Promise.all(dead.map((name) => rm(join(root, name), { recursive: true, force: true })));
  return dead;
}
const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

export class Worker {
  /** This worker's row in the `workers` table (host:pid:random). */
  readonly id = `${hostname()}:${process.pid}:${randomBytes(3).toString('hex')}`;
  private readonly machine: Engine;
  private readonly options: WorkerOptions;
  private readonly running = new Map<string, Running>();
  private readonly queues: string[] = [];
  private readonly timers: NodeJS.Timeout[] = [];
  private readonly stopListeners: Array<() => void> = [];
  private pending: Array<{ entry: Settlement; resolve: () => void }> = [];
  private flushing: Promise<void> | null = null;
  /** No more fetching (draining or stopped). */
  private draining = false;
  private stopping: Promise<void> | null = null;
  private ticking = false;
  private lastCancelCheck = 0;
  private lastRegistryBeat = 0;
  /** When this worker last saw the database fail (0: never); the lease sweep waits a lease after it. */
  private lastDbFailure = 0;
  private dbFailureStreak = 0;

  /** This worker's folder for its tasks' temporary folders. */
  readonly tempRoot = join(TASK_TMP_ROOT, `${process.pid}-${this.id.split(':').pop()}`);

  private readonly controlLocks: ControlLocks;

  constructor(machine: Engine, options: WorkerOptions) {
    this.machine = machine;
    this.options = options;
    this.controlLocks = new ControlLocks(machine.ledger.connectionString, machine.ledger.schema);
  }

  onStop(fn: () => void): void {
    this.stopListeners.push(fn);
  }

  get runningCount(): number {
    return this.running.size;
  }

  private get jobTypes(): string[] {
    return this.options.jobTypes ?? [...this.machine.plugins.keys()];
  }

  async start(): Promise<void> {
    const { boss, config } = this.machine;
    const swept = await sweepDeadTempDirs();
    if (swept.length) this.machine.log.info('removed temporary folders of dead workers', { folders: swept.length });
    await this.registryBeat();
    if (this.options.control !== false) {
      await boss.work<ControlMessage>(
        CONTROL_QUEUE,
        {
          // Control steps of different jobs are independent (and duplicates are compare-and-set
          // no-ops): a fetch takes several and runs them side by side.
          batchSize: CONTROL_BATCH,
          localConcurrency: 2,
          pollingIntervalSeconds: config.pollingIntervalSeconds,
          notifyPollingIntervalSeconds: config.pollingIntervalSeconds,
          burstWhenBatchFull: true,
        },
        (jobs: Job<ControlMessage>[]) => this.handleControl(jobs),
      );
      this.queues.push(CONTROL_QUEUE);
    }
    for (const type of this.jobTypes) {
      const plugin = pluginOf(this.machine, type);
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
        },
        (jobs: Job<TaskMessage>[]) => this.handleTasks(plugin, jobs),
      );
      this.queues.push(name);
    }
    // One short tick drives heartbeats (each task at a third of its own stage's lease), the cancel
    // check (every cancelPollMs) and this worker's liveness row.
    this.timers.push(setInterval(() => void this.tick(), TICK_MS));
    this.timers.push(
      setInterval(() => void this.sweep().catch((e) => this.dbFailed('lease sweep', e)), config.sweepIntervalMs),
    );
    const stallEvery = Math.max(1_000, Math.min(60_000, (config.stallSeconds * 1000) / 2));
    this.timers.push(
      setInterval(() => void recoverStalled(this.machine).catch((e) => this.dbFailed('stall recovery', e)), stallEvery),
    );
  }

  /**
   * Stops fetching; running tasks go on (heartbeating) for up to `graceSeconds`, then are aborted
   * with reason `shutdown` and released (attempt refunded); waits for their settlements. A
   * handler that ignores its abort is released anyway after `abortGraceSeconds`.
   */
  stop(options: StopOptions = {}): Promise<void> {
    this.stopping ??= this.drainAndStop(options.graceSeconds ?? 0);
    return this.stopping;
  }

  /** `stop` with the configured shutdown grace (CM_SHUTDOWN_GRACE_SECONDS). */
  shutdown(): Promise<void> {
    return this.stop({ graceSeconds: this.machine.config.shutdownGraceSeconds });
  }

  private async drainAndStop(graceSeconds: number): Promise<void> {
    const { boss, config, log } = this.machine;
    this.draining = true;
    await Promise.all(this.queues.map((q) => boss.offWork(q, { wait: false }).catch(() => {})));
    const deadline = Date.now() + graceSeconds * 1000;
    const active = () => [...this.running.values()].filter((r) => !r.settling).length;
    if (active() > 0 && graceSeconds > 0)
      log.info('worker stopping: letting running tasks finish', { worker: this.id, tasks: active(), graceSeconds });
    while (active() > 0 && Date.now() < deadline) await sleep(50);
    const left = [...this.running.values()].filter((r) => !r.settling);
    if (left.length) log.info('worker stopping: releasing unfinished tasks', { worker: this.id, tasks: left.length });
    for (const r of left) r.abort.abort(abortReason('shutdown'));
    const hardDeadline = Date.now() + (config.abortGraceSeconds + 5) * 1000;
    while (this.running.size > 0 && Date.now() < hardDeadline) await sleep(25);
    await this.flush();
    await this.controlLocks.close();
    for (const t of this.timers) clearInterval(t);
    await this.machine.pool.query(`DELETE FROM ${this.machine.t.workers} WHERE id = $1`, [this.id]).catch(() => {});
    await rm(this.tempRoot, { recursive: true, force: true }).catch(() => {});
    for (const fn of this.stopListeners) fn();
  }

  // ---- control: plan and aggregate ---------------------------------------------------------

  private async handleControl(jobs: Job<ControlMessage>[]): Promise<void> {
    try {
      // One job's steps stay in order: each pass takes the next step of every job in the batch,
      // and a pass's steps of different jobs go through together (a few statements for all).
      const byJob = new Map<string, Job<ControlMessage>[]>();
      for (const job of jobs) byJob.set(job.data.jobId, [...(byJob.get(job.data.jobId) ?? []), job]);
      while (byJob.size) {
        const pass: Job<ControlMessage>[] = [];
        for (const [id, steps] of byJob) {
          pass.push(steps.shift()!);
          if (!steps.length) byJob.delete(id);
        }
        await this.controlPass(pass);
      }
      // An infrastructure error fails the batch: pg-boss delivers its messages again (the steps
      // that did commit find themselves done and do nothing).
    } finally {
      // Control steps take the same fetch-again-at-once path as tasks: without it, the control
      // queue waited out its polling interval between messages (~4 steps per second per worker).
      if (jobs.length > 0) this.fetchAgainAtOnce(CONTROL_QUEUE);
    }
  }

  private async controlPass(pass: Job<ControlMessage>[]): Promise<void> {
    const signals = new Map(pass.map((job) => [job.data, job.signal]));
    // A copy of a step already running (here or in another worker) is dropped.
    await this.controlLocks.exclusiveMany(
      pass.map((job) => job.data),
      async (steps) => {
        const rows = await loadJobs(this.machine, [...new Set(steps.map((s) => s.jobId))]);
        const plans = steps
          .filter((s) => s.action === 'plan')
          .map((s) => ({ jobId: s.jobId, stage: s.stage ?? 1, signal: signals.get(s)! }));
        const aggregates = steps.filter((s) => s.action === 'aggregate').map((s) => s.jobId);
        const results = await Promise.allSettled([
          planStages(this.machine, plans, rows),
          aggregateJobs(this.machine, aggregates, rows),
        ]);
        const failed = results.find((r) => r.status === 'rejected');
        if (failed) throw failed.reason;
      },
    );
  }

  // ---- tasks -------------------------------------------------------------------------------

  private async handleTasks(plugin: AnyJobDefinition, jobs: Job<TaskMessage>[]): Promise<void> {
    const ids = [...new Set(jobs.flatMap((j) => j.data.taskIds ?? []))];
    if (this.draining) throw new Error('worker shutting down'); // the message is delivered again elsewhere
    // Claim: only queued tasks of running jobs, within the type's cluster-wide caps (claim.ts).
    const rows = await claimTasks(
      this.machine,
      plugin,
      capsOf(plugin, this.machine.config.concurrencyLimits),
      ids,
      this.id,
    );
    try {
      const runs = await Promise.all(rows.map((row) => this.runTask(plugin, row)));
      // The batch's messages are done once its handlers are: their outcomes commit in the
      // background, grouped with the next batch's, while this loop fetches again (a crash before
      // they commit is the same as a crash during the handlers: leases lapse, tasks re-run).
      // With many outcomes waiting (a slow database), the loop waits for them instead.
      if (this.pending.length >= SETTLE_BATCH) await Promise.all(runs.map((r) => r.settled));
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
    if (this.draining) return;
    const { boss } = this.machine;
    for (const w of boss.getWipData()) {
      if (w.name === queue) boss.notifyWorker(w.id);
    }
  }

  /** Runs a task's handler; resolves when it is done, with the promise of its settlement. */
  private async runTask(plugin: AnyJobDefinition, row: ClaimedRow): Promise<{ settled: Promise<void> }> {
    const stage = plugin.stages[row.stage_index - 1] as StageDefinition | undefined;
    const { config, log } = this.machine;
    const abort = new AbortController();
    const running: Running = {
      taskId: row.id,
      jobId: row.job_id,
      lease: row.lease_token,
      leaseMs: Math.max(1, row.lease_seconds) * 1000,
      lastBeat: Date.now(),
      abort,
      progress: null,
      settling: false,
    };
    this.running.set(row.id, running);
    const observed = metrics.taskStarted(row.type, stage?.name ?? String(row.stage_index), row.attempts);
    const timeoutSeconds = stage?.timeoutSeconds ?? config.taskTimeoutSeconds;
    const timer = setTimeout(
      () => abort.abort(abortReason('timeout', `the task ran longer than its ${timeoutSeconds} s time limit`)),
      timeoutSeconds * 1000,
    );
    let entry: Settlement;
    let tempDir: string | null = null;
    const makeTempDir = async () => {
      tempDir ??= join(this.tempRoot, `${row.id.slice(0, 24)}-${row.attempts}`);
      await mkdir(tempDir, { recursive: true });
      return tempDir;
    };
    try {
      if (!stage)
        throw Object.assign(new Error(`job type ${row.type} has no stage ${row.stage_index}`), {
          code: 'CM_ERR_INVALID_STATE',
        });
      const output = await this.untilAbandoned(
        Promise.resolve().then(() =>
          stage.handler(row.input, {
            jobId: row.job_id,
            jobType: row.type,
            taskId: row.id,
            key: row.key,
            stage: { index: row.stage_index, name: stage.name },
            attempt: row.attempts,
            params: row.parameters,
            signal: abort.signal,
            log: withFields(log, taskLogFields(row)),
            db: this.machine.pool,
            ledger: this.machine.ledger,
            services: this.machine.services,
            progress: (fraction, note) => {
              running.progress = { fraction: Math.min(1, Math.max(0, fraction)), note: note ?? null };
            },
            predecessor: ((s?: StageDefinition) =>
              this.predecessor(
                row,
                s ? stageIndexOf(plugin, s, row.stage_index) : row.stage_index - 1,
              )) as TaskContext<unknown>['predecessor'],
            tempDir: makeTempDir,
          }),
        ),
        abort.signal,
        row,
      );
      const reason: unknown = abort.signal.reason;
      if (abort.signal.aborted && isAbortReason(reason) && reason.kind === 'cancelled') {
        // The job was cancelled while the handler ran: whatever it returned, the task is cancelled.
        entry = { kind: 'cancelled', taskId: row.id, jobId: row.job_id, lease: row.lease_token };
      } else {
        const parsed = stage.output.safeParse(output);
        entry = parsed.success
          ? { kind: 'completed', taskId: row.id, jobId: row.job_id, lease: row.lease_token, output: parsed.data }
          : {
              kind: 'failed',
              taskId: row.id,
              jobId: row.job_id,
              lease: row.lease_token,
              error: {
                code: 'CM_ERR_INVALID_OUTPUT',
                message: `handler of stage '${stage.name}' returned an invalid output: ${zodIssues(
                  parsed.error,
                  'output',
                )
                  .map((x) => `${x.path}: ${x.message}`)
                  .join('; ')}`,
              },
            };
      }
    } catch (err) {
      entry = this.failure(row, stage, err, abort.signal);
    } finally {
      clearTimeout(timer);
      if (tempDir) await rm(tempDir, { recursive: true, force: true }).catch(() => {});
    }
    running.settling = true;
    observed(entry.kind);
    // The outcome commits with the others of its settle batch; the task keeps heartbeating (it
    // stays in `running`) until then.
    const settled = this.settle(entry).finally(() => this.running.delete(row.id));
    return { settled };
  }

  /**
   * The handler's promise, or — once the signal is aborted and the handler has not returned within
   * `abortGraceSeconds` — a rejection with the abort reason: a handler that ignores its signal is
   * abandoned (its late outcome is dropped) so that it cannot hold a task, a cancel or a shutdown.
   */
  private untilAbandoned<T>(work: Promise<T>, signal: AbortSignal, row: ClaimedRow): Promise<T> {
    const graceMs = this.machine.config.abortGraceSeconds * 1000;
    return new Promise<T>((resolve, reject) => {
      let timer: NodeJS.Timeout | undefined;
      const onAbort = () => {
        timer = setTimeout(() => {
          this.machine.log.warn('handler ignored its abort; task settled without it', {
            taskId: row.id,
            jobId: row.job_id,
            reason: (signal.reason as Error | undefined)?.message,
          });
          reject(signal.reason as Error);
        }, graceMs);
      };
      if (signal.aborted) onAbort();
      else signal.addEventListener('abort', onAbort, { once: true });
      const done = () => {
        clearTimeout(timer);
        signal.removeEventListener('abort', onAbort);
      };
      work.then(
        (v) => {
          done();
          resolve(v);
        },
        (e: unknown) => {
          done();
          reject(e as Error);
        },
      );
    });
  }

  private failure(row: ClaimedRow, stage: StageDefinition | undefined, err: unknown, signal: AbortSignal): Settlement {
    const lease = row.lease_token;
    const base = { taskId: row.id, jobId: row.job_id, lease };
    const reason: unknown = signal.reason;
    if (signal.aborted && isAbortReason(reason)) {
      const kind = reason.kind;
      if (kind === 'cancelled' || kind === 'job_failed') return { kind: 'cancelled', ...base };
      if (kind === 'shutdown' || kind === 'lease_lost') return { kind: 'release', ...base };
      err = reason; // timeout: TASK_TIMEOUT, transient
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
      return { kind: 'failed', ...base, error };
    }
    return { kind: 'retry', ...base, error, delayMs: retryDelayMs(this.machine.config, row.attempts, stage?.retry) };
  }

  private async predecessor(row: ClaimedRow, stage: number): Promise<unknown> {
    if (stage < 1) return null;
    const { rows } = await this.machine.pool.query(
      `SELECT output FROM ${this.machine.t.tasks} WHERE job_id = $1 AND stage_index = $2 AND key = $3 AND status = 'completed'`,
      [row.job_id, stage, row.key],
    );
    return rows[0]?.output ?? null;
  }

  // ---- batched settlement ------------------------------------------------------------------

  /** Queues an outcome; resolves once it is committed (or refused by its lease fence). */
  private settle(entry: Settlement): Promise<void> {
    return new Promise((resolve) => {
      this.pending.push({ entry, resolve });
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
        await this.commitSettlements(batch.map((b) => b.entry));
        for (const b of batch) b.resolve();
      }
    } finally {
      this.flushing = null;
    }
  }

  /**
   * Writes a batch of outcomes, retrying through database outages until it commits. Retrying is
   * safe: each outcome is fenced by its lease token, so one that did commit (the answer was lost)
   * or whose lease was taken over meanwhile changes nothing the second time. The tasks keep
   * heartbeating while they wait, so an outage shorter than their lease does not re-run them.
   */
  private async commitSettlements(entries: Settlement[]): Promise<void> {
    for (let attempt = 1; ; attempt++) {
      try {
        await withTransaction(this.machine.pool, (client) => settleBatch(client, this.machine, entries));
        if (attempt > 1)
          this.machine.log.info('settlement committed after retries', { attempt, tasks: entries.length });
        return;
      } catch (err) {
        const transient = isTransientDbError(err);
        if (transient) this.dbFailed('settle', err);
        if (!transient && attempt >= 5) {
          // A deterministic failure: give up; the tasks' leases lapse and the sweep re-queues them.
          this.machine.log.error('settle failed', {
            error: (err as Error).message,
            tasks: entries.length,
            taskIds: entries.slice(0, 5).map((e) => e.taskId),
          });
          return;
        }
        await sleep(Math.min(2_000, 25 * 2 ** Math.min(attempt, 7)) + Math.random() * 50);
      }
    }
  }

  private dbFailed(what: string, err: unknown): void {
    if (isTransientDbError(err)) {
      this.lastDbFailure = Date.now();
      this.dbFailureStreak++;
      if (this.dbFailureStreak === 1 || this.dbFailureStreak % 50 === 0)
        this.machine.log.warn(`${what}: database unavailable, retrying`, {
          error: (err as Error).message,
          failures: this.dbFailureStreak,
        });
    } else {
      this.machine.log.warn(`${what} failed`, { error: (err as Error).message });
    }
  }

  // ---- heartbeat, cancel check, liveness, lease sweep ----------------------------------------

  private async tick(): Promise<void> {
    if (this.ticking) return;
    this.ticking = true;
    try {
      const now = Date.now();
      const due = [...this.running.values()].filter((r) => now - r.lastBeat >= Math.max(250, r.leaseMs / 3));
      if (due.length) await this.heartbeat(due);
      if (now - this.lastCancelCheck >= this.machine.config.cancelPollMs && this.running.size) {
        this.lastCancelCheck = now;
        await this.checkJobs();
      }
      if (now - this.lastRegistryBeat >= (this.machine.config.workerLivenessSeconds * 1000) / 3)
        await this.registryBeat();
      if (this.dbFailureStreak) {
        this.dbFailureStreak = 0;
        this.machine.log.info('database reachable again', { worker: this.id });
      }
    } catch (err) {
      this.dbFailed('heartbeat', err);
    } finally {
      this.ticking = false;
    }
  }

  private async heartbeat(list: Running[]): Promise<void> {
    const sentAt = Date.now();
    const { rows } = await this.machine.pool.query(
      `WITH x AS (SELECT * FROM jsonb_to_recordset($1::jsonb) AS x(id text, lease uuid, progress real, note text))
       UPDATE ${this.machine.t.tasks} tk SET heartbeat_at = now(), progress = COALESCE(x.progress, tk.progress), progress_note = COALESCE(x.note, tk.progress_note)
       FROM x WHERE tk.id = x.id AND tk.lease_token = x.lease AND tk.status = 'processing'
       RETURNING tk.id`,
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
    const alive = new Set(rows.map((r) => r.id as string));
    for (const r of list) {
      if (alive.has(r.taskId)) r.lastBeat = sentAt;
      else if (this.running.get(r.taskId) === r && !r.settling && !r.abort.signal.aborted)
        r.abort.abort(abortReason('lease_lost'));
    }
  }

  /** Aborts running handlers whose job was cancelled or failed: lands within cancelPollMs. */
  private async checkJobs(): Promise<void> {
    const jobIds = [...new Set([...this.running.values()].map((r) => r.jobId))];
    const { rows } = await this.machine.pool.query(
      `SELECT id, status FROM ${this.machine.t.jobs} WHERE id = ANY($1) AND status <> 'processing'`,
      [jobIds],
    );
    const ended = new Map(rows.map((r) => [r.id as string, r.status as string]));
    for (const r of this.running.values()) {
      const status = ended.get(r.jobId);
      if (!status || r.settling || r.abort.signal.aborted) continue;
      r.abort.abort(abortReason(status === 'cancelled' ? 'cancelled' : 'job_failed'));
    }
  }

  private async registryBeat(): Promise<void> {
    this.lastRegistryBeat = Date.now();
    await this.machine.pool.query(
      `INSERT INTO ${this.machine.t.workers} (id, host, pid, job_types, control, running, stopping)
       VALUES ($1, $2, $3, $4, $5, $6, $7)
       ON CONFLICT (id) DO UPDATE SET heartbeat_at = now(), running = EXCLUDED.running, stopping = EXCLUDED.stopping`,
      [
        this.id,
        hostname(),
        process.pid,
        this.jobTypes,
        this.options.control !== false,
        this.running.size,
        this.draining,
      ],
    );
  }

  /**
   * Re-queues tasks whose heartbeat stopped (their worker died) or, when they have no attempt
   * left, settles them as failed. SKIP LOCKED lets many workers sweep at once without overlap.
   * After this worker saw the database fail, it waits a lease before judging leases: the workers
   * holding them could not heartbeat either.
   */
  private async sweep(): Promise<void> {
    const { t } = this.machine;
    const quietSince = this.lastDbFailure ? new Date(this.lastDbFailure) : new Date(0);
    await withTransaction(this.machine.pool, async (client) => {
      const { rows } = await client.query(
        `SELECT tk.id, tk.job_id, tk.stage_index, tk.lease_token, tk.attempts, tk.max_attempts, j.type, j.status AS job_status
         FROM ${t.tasks} tk JOIN ${t.jobs} j ON j.id = tk.job_id
         WHERE tk.status = 'processing' AND tk.heartbeat_at < now() - make_interval(secs => tk.lease_seconds)
           AND $1::timestamptz < now() - make_interval(secs => tk.lease_seconds)
         ORDER BY tk.heartbeat_at LIMIT 500 FOR UPDATE OF tk SKIP LOCKED`,
        [quietSince],
      );
      if (!rows.length) return;
      const error = (r: { attempts: number }): StoredError => ({
        code: 'TASK_LEASE_EXPIRED',
        message: `no heartbeat for the task's lease; its worker presumably died during attempt ${r.attempts}`,
      });
      const entries: Settlement[] = [];
      const requeue: typeof rows = [];
      for (const r of rows) {
        const base = { taskId: r.id as string, jobId: r.job_id as string, lease: r.lease_token as string };
        if (r.job_status !== 'processing') entries.push({ kind: 'cancelled', ...base });
        else if (r.attempts >= r.max_attempts) entries.push({ kind: 'failed', ...base, error: error(r) });
        else requeue.push(r);
      }
      if (requeue.length) {
        await client.query(
          `UPDATE ${t.tasks} SET status = 'queued', lease_token = NULL, heartbeat_at = NULL, worker_id = NULL, due_at = now() WHERE id = ANY($1)`,
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
      // Rows of workers gone for a day (killed without a goodbye).
      await client.query(`DELETE FROM ${t.workers} WHERE heartbeat_at < now() - interval '1 day'`);
    });
  }
}
