import { PgBoss } from 'pg-boss';
import { configFromEnv, DEFAULT_CONFIG, logLevelFromEnv, type MachineConfig, type MachineOptions } from './config.ts';
import { createPool, listenOnConnect, preflight, quoteIdent, type Pool } from './db.ts';
import type { AnyJobDefinition, LedgerInfo, Logger, Services } from './define-job.ts';
import { CoreMachineError } from './errors.ts';
import { assertCompliant } from './compliance.ts';
import { checkManifests } from './discover.ts';
import { defaultJobId } from './job-id.ts';
import { CONTROL_QUEUE, tables, taskQueue, type Tables } from './ledger.ts';
import { cancelJob, retryJob } from './transitions.ts';
import { SubmitGroups } from './submit.ts';
import { liveWorkers, pluginOf, retryDelayMs, zodIssues, type Engine, type LiveWorker } from './engine.ts';

export { zodIssues, type LiveWorker } from './engine.ts';
import { unknownLimitKeys } from './claim.ts';
import { createLogger } from './logger.ts';
import { loadMigrations, migrate } from './migrate.ts';
import type { JobEvent, JobView, Page, SubmitResult, TaskView } from './views.ts';
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

export type { HealthReport } from './health.ts';
export type { JobTypeInfo, ListJobsFilter, ListTasksFilter } from './jobs-view.ts';
import { Worker, type WorkerOptions } from './worker.ts';

export interface CreateMachineOptions extends MachineOptions {
  plugins: AnyJobDefinition[];
  services?: Partial<Services>;
}

/** Every service a plugin declares (`services: ['storage']`) must be supplied. */
export function assertServices(plugins: AnyJobDefinition[], services: Partial<Services>): void {
  const missing = plugins.flatMap((p) =>
    (p.services ?? [])
      .filter((name) => (services as Record<string, unknown>)[name] === undefined)
      .map((name) => `${p.type} needs service '${name}'`),
  );
  if (missing.length)
    throw new CoreMachineError(
      'CM_ERR_SERVICE_MISSING',
      `Missing services: ${missing.join('; ')}. Supply them in CoreMachine.start({ services }).`,
      { issues: missing.map((m) => ({ path: 'services', message: m })) },
    );
}

/**
 * The orchestrator: the API side (submit, query, cancel, retry) and the factory of workers.
 * One per process; `start` migrates the ledger and pg-boss, creates the queues and returns it.
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
    pool: Pool,
    boss: PgBoss,
    config: MachineConfig,
    log: Logger,
    services: Services,
    plugins: AnyJobDefinition[],
    connectionString: string,
  ) {
    this.pool = pool;
    this.boss = boss;
    this.config = config;
    this.log = log;
    this.services = services;
    this.t = tables(quoteIdent(config.schema), config.schema);
    this.plugins = new Map(plugins.map((p) => [p.type, p]));
    this.ledger = { connectionString, schema: config.schema };
    this.submits = new SubmitGroups({ pool, boss, t: this.t });
  }

  static async start(options: CreateMachineOptions): Promise<CoreMachine> {
    // Every way in (server discovery, createApp({ plugins }), the test harness, embedding) goes
    // through the same compliance check: a non-compliant manifest never reaches the queue.
    assertCompliant(checkManifests(options.plugins).reports);
    assertServices(options.plugins, options.services ?? {});
    const config = { ...DEFAULT_CONFIG, ...configFromEnv(), ...options.config };
    const log = options.log ?? createLogger(logLevelFromEnv());
    const pool = createPool(options.connectionString, config.poolMax);
    await preflight(pool, options.connectionString);
    await migrate(pool, config.schema, await loadMigrations(options.migrationDirs));
    const boss = new PgBoss({
      connectionString: options.connectionString,
      schema: `${config.schema}_queue`,
      max: Math.max(4, Math.ceil(config.poolMax / 2)),
      useListenNotify: true,
      supervise: true,
      superviseIntervalSeconds: config.queueSuperviseSeconds,
      monitorIntervalSeconds: config.queueSuperviseSeconds,
      schedule: false,
      monitorVacuum: false,
      application_name: 'coremachine-queue',
      // pg-boss hands its options to its pg.Pool: the same guard as ours (see listenOnConnect).
      ...listenOnConnect,
    } as ConstructorParameters<typeof PgBoss>[0]);
    boss.on('error', (err) => log.error('queue error', { error: (err as Error).message }));
    const unknownLimits = unknownLimitKeys(options.plugins, config.concurrencyLimits);
    if (unknownLimits.length)
      log.warn('concurrency limits name no loaded job type or stage; they cap nothing here', {
        keys: unknownLimits,
      });
    await boss.start();
    // Queue creation is idempotent and races safely; control messages retry on transient errors
    // (a crashed planner is re-run after its heartbeat lapses). Task messages never retry inside
    // pg-boss: the ledger decides retries, so a message is only a wake-up call carrying an id.
    await boss.createQueue(CONTROL_QUEUE, {
      retryLimit: 10,
      retryDelay: 1,
      retryBackoff: true,
      retryDelayMax: 60,
      heartbeatSeconds: 10,
      expireInSeconds: 3600,
      notify: true,
    });
    for (const p of options.plugins) {
      // A message whose handler failed before claiming (a lost connection), or whose worker died
      // holding it (no pg-boss heartbeat for 10 s), is delivered again; that is harmless, since a
      // claim only takes a queued task. Long handlers keep their message alive by heartbeat.
      await boss.createQueue(taskQueue(p.type), {
        retryLimit: 5,
        retryDelay: 1,
        expireInSeconds: 86_400,
        heartbeatSeconds: 10,
        notify: true,
      });
    }
    return new CoreMachine(
      pool,
      boss,
      config,
      log,
      (options.services ?? {}) as Services,
      options.plugins,
      options.connectionString,
    );
  }

  plugin(type: string): AnyJobDefinition {
    return pluginOf(this, type);
  }

  /** Validates parameters (defaults applied) and computes the job id, without writing anything. */
  prepare(
    type: string,
    rawParams: unknown,
  ): { jobId: string; params: Record<string, unknown>; plugin: AnyJobDefinition } {
    const plugin = this.plugin(type);
    const parsed = plugin.parameters.safeParse(rawParams ?? {});
    if (!parsed.success) {
      const issues = zodIssues(parsed.error);
      throw new CoreMachineError(
        'CM_ERR_INVALID_PARAMETERS',
        `Invalid parameters for ${type}: ${issues.map((i) => `${i.path}: ${i.message}`).join('; ')}`,
        { issues, cause: parsed.error },
      );
    }
    const params = parsed.data as Record<string, unknown>;
    const jobId = plugin.generateJobId
      ? plugin.generateJobId(params)
      : defaultJobId(type, params, plugin.idExcludeKeys);
    return { jobId, params, plugin };
  }

  /**
   * Creates the job and queues the planning of its first stage, in one transaction. The same
   * parameters again return the existing job with `idempotent: true`, however many submit at once.
   */
  async submit(type: string, rawParams: unknown): Promise<SubmitResult> {
    const { jobId, params, plugin } = this.prepare(type, rawParams);
    // Grouped with the submits that arrive at the same time: one transaction for all (submit.ts).
    return this.submits.submit({
      jobId,
      type,
      version: plugin.version,
      params,
      totalStages: plugin.stages.length,
    });
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
