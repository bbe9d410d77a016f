import type { PgBoss } from 'pg-boss';
import { unknownLimitKeys } from './claim.ts';
import { assertCompliant, assertServices } from './compliance.ts';
import { configFromEnv, DEFAULT_CONFIG, logLevelFromEnv, type MachineConfig, type MachineOptions } from './config.ts';
import { createPool, preflight, quoteIdent, type Pool } from './db.ts';
import type { AnyJobDefinition, LedgerInfo, Logger, Services } from './define-job.ts';
import { checkManifests } from './discover.ts';
import { liveWorkers, pluginOf, retryDelayMs, type Engine, type LiveWorker } from './engine.ts';
import { health, ready, type HealthReport } from './health.ts';
import {
  getJob,
  jobEvents,
  jobTypes,
  listJobs,
  listTasks,
  requireJob,
  type JobTypeInfo,
  type ListJobsFilter,
  type ListTasksFilter,
} from './jobs-view.ts';
import { tables, type Tables } from './ledger.ts';
import { createLogger } from './logger.ts';
import { loadMigrations, migrate } from './migrate.ts';
import { startQueue } from './queue.ts';
import { prepareSubmit, SubmitGroups, type PreparedSubmit } from './submit.ts';
import { cancelJob, retryJob } from './transitions.ts';
import type { JobEvent, JobView, Page, SubmitResult, TaskView } from './views.ts';
import { Worker, type WorkerOptions } from './worker.ts';

export { assertServices } from './compliance.ts';
export { zodIssues, type LiveWorker } from './engine.ts';
export type { HealthReport } from './health.ts';
export type { JobTypeInfo, ListJobsFilter, ListTasksFilter } from './jobs-view.ts';

export interface CreateMachineOptions extends MachineOptions {
  plugins: AnyJobDefinition[];
  services?: Partial<Services>;
}

/**
 * The orchestrator's facade: starts the engine (ledger migrated, queues created), starts
 * workers, and hands every call to the module that does it — submits (submit.ts), reads
 * (jobs-view.ts), transitions (transitions.ts), health (health.ts). One per process; it is the
 * engine record those modules take.
 *
 * @example
 *   const machine = await CoreMachine.start({ connectionString, plugins: [helloWorld] });
 *   const { jobId } = await machine.submit('hello_world', { n: 3 });
 *   const worker = await machine.startWorker();
 */
export class CoreMachine implements Engine {
  readonly pool: Pool;
  readonly boss: PgBoss;
  readonly config: MachineConfig;
  readonly log: Logger;
  readonly services: Services;
  readonly t: Tables;
  readonly plugins: ReadonlyMap<string, AnyJobDefinition>;
  /** Handed to plugins as `ctx.ledger`. */
  readonly ledger: LedgerInfo;
  private readonly workers = new Set<Worker>();
  private readonly submits: SubmitGroups;

  private constructor(
    parts: Pick<Engine, 'pool' | 'boss' | 'config' | 'log' | 'services'> & {
      plugins: AnyJobDefinition[];
      connectionString: string;
    },
  ) {
    this.pool = parts.pool;
    this.boss = parts.boss;
    this.config = parts.config;
    this.log = parts.log;
    this.services = parts.services;
    this.t = tables(quoteIdent(parts.config.schema), parts.config.schema);
    this.plugins = new Map(parts.plugins.map((p) => [p.type, p]));
    this.ledger = { connectionString: parts.connectionString, schema: parts.config.schema };
    this.submits = new SubmitGroups({ pool: this.pool, boss: this.boss, t: this.t });
  }

  static async start(options: CreateMachineOptions): Promise<CoreMachine> {
    // Every way in (server discovery, createApp({ plugins }), the test harness, embedding) goes
    // through the same compliance check: a non-compliant manifest never reaches the queue.
    const { plugins, connectionString } = options;
    assertCompliant(checkManifests(plugins).reports);
    assertServices(plugins, options.services ?? {});
    const config = { ...DEFAULT_CONFIG, ...configFromEnv(), ...options.config };
    const log = options.log ?? createLogger(logLevelFromEnv());
    const pool = createPool(connectionString, config.poolMax);
    await preflight(pool, connectionString);
    await migrate(pool, config.schema, await loadMigrations(options.migrationDirs));
    const unknownLimits = unknownLimitKeys(plugins, config.concurrencyLimits);
    if (unknownLimits.length)
      log.warn('concurrency limits name no loaded job type or stage; they cap nothing here', {
        keys: unknownLimits,
      });
    const boss = await startQueue(connectionString, config, log, plugins);
    const services = (options.services ?? {}) as Services;
    return new CoreMachine({ pool, boss, config, log, services, plugins, connectionString });
  }

  plugin(type: string): AnyJobDefinition {
    return pluginOf(this, type);
  }

  /** Validates parameters (defaults applied) and computes the job id, without writing anything. */
  prepare(type: string, rawParams: unknown): PreparedSubmit {
    return prepareSubmit(this, type, rawParams);
  }

  /**
   * Creates the job and queues the planning of its first stage, in one transaction. The same
   * parameters again return the existing job with `idempotent: true`, however many submit at once.
   */
  async submit(type: string, rawParams: unknown): Promise<SubmitResult> {
    const { jobId, params, plugin } = this.prepare(type, rawParams);
    // Grouped with the submits that arrive at the same time: one transaction for all (submit.ts).
    const totalStages = plugin.stages.length;
    return this.submits.submit({ jobId, type, version: plugin.version, params, totalStages });
  }

  getJob(jobId: string): Promise<JobView | null> {
    return getJob(this, jobId);
  }

  requireJob(jobId: string): Promise<JobView> {
    return requireJob(this, jobId);
  }

  /** Jobs, newest first, filtered by status, type and creation time; cursor-paginated. */
  listJobs(filter: ListJobsFilter = {}): Promise<Page<JobView>> {
    return listJobs(this, filter);
  }

  /** A job's tasks by stage and status, in (stage, key) order; cursor-paginated. */
  listTasks(jobId: string, filter: ListTasksFilter = {}): Promise<Page<TaskView>> {
    return listTasks(this, jobId, filter);
  }

  /** The job's timeline, oldest first, after event id `afterId`. */
  events(jobId: string, afterId = 0, limit = 500): Promise<JobEvent[]> {
    return jobEvents(this, jobId, afterId, limit);
  }

  /** Cancels a running job: queued tasks never run; running handlers see their abort signal. */
  cancel(jobId: string): Promise<JobView> {
    return cancelJob(this, jobId);
  }

  /** Re-runs a failed (or cancelled) job from where it stopped (transitions.ts). */
  retry(jobId: string): Promise<JobView> {
    return retryJob(this, jobId);
  }

  /** Job types with descriptions, stages and the JSON Schema of their parameters. */
  types(): JobTypeInfo[] {
    return jobTypes(this);
  }

  /** Database, queue and live workers of any process, each probe within a time budget. */
  health(options: { budgetMs?: number } = {}): Promise<HealthReport> {
    return health(this, options);
  }

  /** Whether this process can serve requests now (PostgreSQL answers within the budget). */
  ready(budgetMs = 1_000): Promise<{ ready: boolean; error?: string }> {
    return ready(this, budgetMs);
  }

  /** Worker processes whose heartbeat in the database is fresh. */
  liveWorkers(): Promise<LiveWorker[]> {
    return liveWorkers(this);
  }

  /** Starts a worker in this process for all job types (or those given). */
  async startWorker(options: WorkerOptions = {}): Promise<Worker> {
    const worker = new Worker(this, options);
    this.workers.add(worker);
    worker.onStop(() => this.workers.delete(worker));
    await worker.start();
    return worker;
  }

  /** Retry delay for a task that failed on run `attempt`. */
  retryDelayMs(attempt: number, policy?: { baseDelayMs?: number; maxDelayMs?: number }): number {
    return retryDelayMs(this.config, attempt, policy);
  }

  /** Stops this process's workers (running tasks aborted and released at once) and disconnects. */
  async close(): Promise<void> {
    await Promise.all([...this.workers].map((w) => w.stop()));
    await this.boss.stop({ graceful: false, close: true, timeout: 5_000 }).catch(() => {});
    await this.pool.end().catch(() => {});
  }
}
