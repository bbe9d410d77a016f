/**
 * Prometheus metrics (prom-client). Counters and histograms count what this process did (the
 * tasks its workers ran, the jobs its API accepted, the requests it answered); the gauges are
 * read from the ledger at scrape time (`refreshLedgerGauges`), so any process shows the state of
 * the whole cluster: jobs by type and status, queued and running tasks, the oldest queued task,
 * live workers and their busy slots. Every name starts with `cm_`; the process's default metrics
 * (CPU, memory, event loop lag, GC) come with them.
 */
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';
import type { Queryable } from './db.ts';

/** Seconds: from a no-op task to a long raster conversion. */
const DURATION_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 900, 3600];
const HTTP_BUCKETS = [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];

/** Event kinds that are a settlement of the job (`job_completed` carries its status as message). */
const SETTLED_KINDS: Record<string, string> = { job_failed: 'failed', job_cancelled: 'cancelled' };

export class EngineMetrics {
  readonly registry = new Registry();
  readonly jobsSubmitted = new Counter({
    name: 'cm_jobs_submitted_total',
    help: 'Jobs created by submit in this process (idempotent re-submits not counted), by type',
    labelNames: ['type'] as const,
    registers: [this.registry],
  });
  readonly jobsSettled = new Counter({
    name: 'cm_jobs_settled_total',
    help: 'Jobs that reached a final status in this process, by status',
    labelNames: ['status'] as const,
    registers: [this.registry],
  });
  readonly events = new Counter({
    name: 'cm_job_events_total',
    help: 'Ledger events written by this process, by kind (task_retried, task_lease_expired, tasks_requeued, stage_repaired, control_resent, ...)',
    labelNames: ['kind'] as const,
    registers: [this.registry],
  });
  readonly tasksStarted = new Counter({
    name: 'cm_tasks_started_total',
    help: 'Task runs (attempts) started by the workers of this process, by type and stage',
    labelNames: ['type', 'stage'] as const,
    registers: [this.registry],
  });
  readonly taskRetries = new Counter({
    name: 'cm_task_retries_total',
    help: 'Task runs started that were a retry (attempt 2 or later), by type and stage',
    labelNames: ['type', 'stage'] as const,
    registers: [this.registry],
  });
  readonly tasksSettled = new Counter({
    name: 'cm_tasks_settled_total',
    help: 'Task runs ended by the workers of this process, by type, stage and outcome (completed, failed, retry, cancelled, release)',
    labelNames: ['type', 'stage', 'outcome'] as const,
    registers: [this.registry],
  });
  readonly taskDuration = new Histogram({
    name: 'cm_task_duration_seconds',
    help: 'Handler run time of a task run, by type, stage and outcome',
    labelNames: ['type', 'stage', 'outcome'] as const,
    buckets: DURATION_BUCKETS,
    registers: [this.registry],
  });
  readonly httpDuration = new Histogram({
    name: 'cm_http_request_duration_seconds',
    help: 'HTTP requests answered by this process, by method, route (ids replaced by placeholders) and status',
    labelNames: ['method', 'route', 'status'] as const,
    buckets: HTTP_BUCKETS,
    registers: [this.registry],
  });
  readonly jobs = new Gauge({
    name: 'cm_jobs',
    help: 'Jobs in the ledger (all processes), by type and status',
    labelNames: ['type', 'status'] as const,
    registers: [this.registry],
  });
  readonly tasksQueued = new Gauge({
    name: 'cm_tasks_queued',
    help: 'Queued tasks of running jobs that are due now (waiting for a worker slot), by type',
    labelNames: ['type'] as const,
    registers: [this.registry],
  });
  readonly tasksDelayed = new Gauge({
    name: 'cm_tasks_retry_scheduled',
    help: 'Queued tasks waiting for their retry delay, by type',
    labelNames: ['type'] as const,
    registers: [this.registry],
  });
  readonly oldestQueued = new Gauge({
    name: 'cm_oldest_queued_task_age_seconds',
    help: 'Age of the oldest due queued task (since it became due), by type',
    labelNames: ['type'] as const,
    registers: [this.registry],
  });
  readonly tasksRunning = new Gauge({
    name: 'cm_tasks_running',
    help: 'Tasks being run (holding a lease) across all workers, by type',
    labelNames: ['type'] as const,
    registers: [this.registry],
  });
  readonly liveWorkers = new Gauge({
    name: 'cm_workers_live',
    help: 'Worker processes whose heartbeat is fresh (all hosts)',
    registers: [this.registry],
  });
  readonly busySlots = new Gauge({
    name: 'cm_worker_busy_slots',
    help: 'Tasks the live workers report running (sum over workers)',
    registers: [this.registry],
  });
  readonly scrapeErrors = new Counter({
    name: 'cm_metrics_ledger_errors_total',
    help: 'Scrapes whose ledger gauges could not be read (database unreachable); the gauges keep their last values',
    registers: [this.registry],
  });

  constructor() {
    collectDefaultMetrics({ register: this.registry });
  }

  /** Starts timing a task run; the returned function records its outcome and duration. */
  taskStarted(type: string, stage: string, attempt: number): (outcome: string) => void {
    const t0 = performance.now();
    this.tasksStarted.inc({ type, stage });
    if (attempt > 1) this.taskRetries.inc({ type, stage });
    return (outcome) => {
      this.tasksSettled.inc({ type, stage, outcome });
      this.taskDuration.observe({ type, stage, outcome }, (performance.now() - t0) / 1000);
    };
  }

  /** Counts a ledger event (and a job settlement when it is one). */
  event(kind: string, message?: string | null): void {
    this.events.inc({ kind });
    const settled = kind === 'job_completed' ? (message ?? 'completed') : SETTLED_KINDS[kind];
    if (settled) this.jobsSettled.inc({ status: settled });
  }

  /** Reads the cluster-wide gauges from the ledger (a few index-backed aggregate queries). */
  async refreshLedgerGauges(
    db: Queryable,
    t: { jobs: string; tasks: string; workers: string },
    livenessSeconds: number,
  ): Promise<void> {
    const [jobs, queued, running, workers] = await Promise.all([
      db.query(`SELECT type, status, count(*)::int AS n FROM ${t.jobs} GROUP BY type, status`),
      db.query(
        `SELECT j.type, count(*) FILTER (WHERE tk.due_at <= now())::int AS due,
                count(*) FILTER (WHERE tk.due_at > now())::int AS delayed,
                COALESCE(extract(epoch FROM now() - min(tk.due_at) FILTER (WHERE tk.due_at <= now())), 0)::float8 AS oldest
         FROM ${t.tasks} tk JOIN ${t.jobs} j ON j.id = tk.job_id
         WHERE tk.status = 'queued' AND j.status = 'processing' GROUP BY j.type`,
      ),
      db.query(
        `SELECT j.type, count(*)::int AS n FROM ${t.tasks} tk JOIN ${t.jobs} j ON j.id = tk.job_id
         WHERE tk.status = 'processing' GROUP BY j.type`,
      ),
      db.query(
        `SELECT count(*)::int AS n, COALESCE(sum(running), 0)::int AS busy FROM ${t.workers}
         WHERE heartbeat_at > now() - make_interval(secs => $1)`,
        [livenessSeconds],
      ),
    ]);
    this.jobs.reset();
    for (const r of jobs.rows) this.jobs.set({ type: r.type, status: r.status }, r.n);
    this.tasksQueued.reset();
    this.tasksDelayed.reset();
    this.oldestQueued.reset();
    for (const r of queued.rows) {
      this.tasksQueued.set({ type: r.type }, r.due);
      this.tasksDelayed.set({ type: r.type }, r.delayed);
      this.oldestQueued.set({ type: r.type }, Math.round(r.oldest * 1000) / 1000);
    }
    this.tasksRunning.reset();
    for (const r of running.rows) this.tasksRunning.set({ type: r.type }, r.n);
    this.liveWorkers.set(workers.rows[0]?.n ?? 0);
    this.busySlots.set(workers.rows[0]?.busy ?? 0);
  }
}

/** The process's metrics: one registry whatever the number of machines in the process. */
export const metrics = new EngineMetrics();
