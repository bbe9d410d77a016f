/**
 * Terminology (one vocabulary, used from SQL to UI):
 * - job: one submission of a job type with validated parameters; id = hash of type + parameters.
 * - stage: an ordered step of a job; all its tasks run in parallel.
 * - plan: a stage's function that turns parameters (and the previous stage's results) into tasks.
 * - task: one unit of work with a stable logical key; its id = hash(job id, stage, key).
 * - handler: the function that runs one task.
 * - aggregate: the job's function that turns all task results into the job result.
 */
import type { Pool } from 'pg';
import type { z } from 'zod';

/**
 * Shared services the machine hands to plans, handlers and aggregates (storage client,
 * schema names, ...). Empty here: packages add their members by module augmentation, e.g.
 *   declare module '@coremachine/core-machine' { interface Services { storage: BlobStorage } }
 * and whoever creates the machine (server, test-kit) supplies them.
 */
// eslint-disable-next-line @typescript-eslint/no-empty-object-type
export interface Services {}

export const PLUGIN_KIND = 'coremachine.job' as const;
export const CONTRACT_VERSION = 1 as const;

export interface Logger {
  info(message: string, fields?: Record<string, unknown>): void;
  warn(message: string, fields?: Record<string, unknown>): void;
  error(message: string, fields?: Record<string, unknown>): void;
}

/** A task to create, returned by a stage's `plan`. `key` is stable across re-plans. */
export interface TaskSpec<I> {
  key: string;
  input: I;
}

export type TaskStatus = 'queued' | 'processing' | 'completed' | 'failed' | 'cancelled';
export type JobStatus = 'queued' | 'processing' | 'completed' | 'completed_with_errors' | 'failed' | 'cancelled';
export type StageStatus = 'processing' | 'completed' | 'failed' | 'cancelled';

/** A settled task as seen by `plan` (previous stage) and `aggregate`. */
export interface TaskOutcome<O = unknown> {
  id: string;
  key: string;
  status: TaskStatus;
  output: O | null;
  error: { code: string; message: string; detail?: unknown } | null;
  attempts: number;
}

/** A completed task's outcome, its output typed by its stage. */
export type CompletedOutcome<S> = TaskOutcome<StageOutput<S>> & { output: StageOutput<S> };

/** Where the ledger lives, for plugins that reach PostgreSQL outside the pool (GDAL's PG driver). */
export interface LedgerInfo {
  /** The connection string the engine was started with (may carry a password: never log it). */
  connectionString: string;
  /** The ledger's schema (`jobs`, `stages`, `tasks`, ...); pg-boss lives in `<schema>_queue`. */
  schema: string;
}

export interface PlanContext<P> {
  jobId: string;
  jobType: string;
  params: P;
  stage: { index: number; name: string };
  /** The previous stage's settled tasks (empty for the first stage). */
  previous: TaskOutcome[];
  /**
   * The completed tasks of an earlier stage, outputs typed by that stage:
   * `const greetings = await ctx.outputs(greeting)` → `greetings[0].output` is greeting's output.
   */
  outputs<S extends StageDefinition>(stage: S): Promise<Array<CompletedOutcome<S>>>;
  db: Pool;
  ledger: LedgerInfo;
  services: Services;
  log: Logger;
  signal: AbortSignal;
}

export interface TaskContext<P> {
  jobId: string;
  jobType: string;
  taskId: string;
  key: string;
  stage: { index: number; name: string };
  /** 1 on the first run, 2 on the first retry, ... */
  attempt: number;
  params: P;
  /**
   * Aborted when the job is cancelled or fails elsewhere, the task times out, its lease is lost or
   * the worker shuts down (past its grace). `signal.reason` is an `AbortReason` whose `kind` says
   * which (`isAbortReason(ctx.signal.reason, 'timeout')`); rethrowing it is always right.
   */
  signal: AbortSignal;
  log: Logger;
  db: Pool;
  ledger: LedgerInfo;
  services: Services;
  /** Reports progress (0..1) with an optional note; shown by the API, CLI and dashboard. */
  progress(fraction: number, note?: string): void;
  /**
   * Lineage: the output of the completed task with the same key in an earlier stage, or null.
   * Given the stage object, the output is typed as that stage's: `await ctx.predecessor(greeting)`.
   * Without it, the previous stage's output, untyped.
   */
  predecessor(): Promise<unknown>;
  predecessor<S extends StageDefinition>(stage: S): Promise<StageOutput<S> | null>;
  /**
   * A folder of this run's own for temporary files, created on first call and removed when the
   * handler ends, whatever the outcome. A worker that dies leaves it behind: the next worker
   * started on the host removes folders of dead processes.
   */
  tempDir(): Promise<string>;
}

export interface StageSummary {
  index: number;
  name: string;
  status: StageStatus;
  total: number;
  completed: number;
  failed: number;
}

export interface AggregateContext<P> {
  jobId: string;
  jobType: string;
  params: P;
  stages: StageSummary[];
  /** All settled tasks of a stage, by stage name, ordered by key. */
  tasks(stageName: string): Promise<TaskOutcome[]>;
  /** The completed tasks of a stage, by stage object, outputs typed by that stage; ordered by key. */
  outputs<S extends StageDefinition>(stage: S): Promise<Array<CompletedOutcome<S>>>;
  ledger: LedgerInfo;
  /** Sum over all tasks of (attempts - 1): how many retries the job spent. */
  retries: number;
  db: Pool;
  services: Services;
  log: Logger;
}

export interface RetryPolicy {
  /** Total runs allowed, first included. Default from config (CM_TASK_MAX_ATTEMPTS, 4). */
  maxAttempts?: number;
  baseDelayMs?: number;
  maxDelayMs?: number;
}

export interface StageDefinition<P = any, I = any, O = any> {
  name: string;
  description?: string;
  /** Schema of a task's input; checked when the plan returns. */
  input: z.ZodType<I>;
  /** Schema of a task's output; a handler returning anything else fails the task. */
  output: z.ZodType<O>;
  plan(ctx: PlanContext<P>): TaskSpec<I>[] | Promise<TaskSpec<I>[]>;
  handler(input: I, ctx: TaskContext<P>): O | Promise<O>;
  /** What a task that fails for good does: fail the job (default) or let the stage go on. */
  onTaskFailure?: 'fail_job' | 'continue';
  retry?: RetryPolicy;
  /**
   * Seconds without heartbeat after which a running task is presumed dead and re-run (default
   * from config). Workers heartbeat every third of it, so a healthy task longer than its lease
   * keeps it.
   */
  leaseSeconds?: number;
  /**
   * Seconds a handler may run (default from config, CM_TASK_TIMEOUT_SECONDS). Past it the
   * handler's `ctx.signal` aborts with an `AbortReason` of kind `timeout` and the task fails
   * `TASK_TIMEOUT` (transient: retried by the stage's policy).
   */
  timeoutSeconds?: number;
}

/** Up to batchSize × concurrency handlers of a job type run at once in one worker. */
export interface QueueOptions {
  /** Tasks fetched at once; their handlers run in parallel. Heavy GDAL work: 1. */
  batchSize?: number;
  /** Fetch loops per worker. */
  concurrency?: number;
  /**
   * Task ids per queue message when a stage is planned (default 1). Light tasks travel in groups
   * (one message wakes a worker for many), heavy ones one per message so every worker gets a share.
   */
  tasksPerMessage?: number;
}

export interface JobDefinitionInput<T extends string, PS extends z.ZodType, R extends z.ZodType> {
  /** snake_case job type, e.g. `hello_world`. */
  type: T;
  version: string;
  description: string;
  parameters: PS;
  /** Parameter keys left out of the job id (hello_world leaves out `failure_rate`). */
  idExcludeKeys?: readonly string[];
  /** Overrides the default job id (sha256 of canonical `{type, parameters}`). */
  generateJobId?: (params: z.output<PS>) => string;
  stages: readonly StageDefinition<z.output<PS>>[];
  result: R;
  aggregate(ctx: AggregateContext<z.output<PS>>): z.input<R> | Promise<z.input<R>>;
  queue?: QueueOptions;
  /**
   * The members of `Services` this job needs (e.g. `['storage']`): checked when the engine
   * starts, so a missing service stops the process naming the job and the service instead of
   * failing the first task.
   */
  services?: readonly (keyof Services & string)[];
}

export interface JobDefinition<
  T extends string = string,
  PS extends z.ZodType = z.ZodType,
  R extends z.ZodType = z.ZodType,
> extends JobDefinitionInput<T, PS, R> {
  kind: typeof PLUGIN_KIND;
  contractVersion: typeof CONTRACT_VERSION;
}

export type AnyJobDefinition = JobDefinition<string, any, any>;
/** Parameters as a caller writes them (defaults optional). */
export type JobParamsInput<J> = J extends JobDefinition<any, infer PS, any> ? z.input<PS> : never;
/** Parameters after validation (defaults applied). */
export type JobParams<J> = J extends JobDefinition<any, infer PS, any> ? z.output<PS> : never;
export type JobResult<J> = J extends JobDefinition<any, any, infer R> ? z.output<R> : never;
export type StageOutput<S> = S extends StageDefinition<any, any, infer O> ? O : never;

/**
 * Declares a job type. An identity helper: its job is type inference plus the plugin brand
 * that the loader checks.
 *
 * @example
 *   export default defineJob({ type: 'hello_world', version: '1.0.0', description: '...',
 *     parameters: z.object({ n: z.number() }), stages: [greeting], result, aggregate });
 */
export function defineJob<const T extends string, PS extends z.ZodType, R extends z.ZodType>(
  def: JobDefinitionInput<T, PS, R>,
): JobDefinition<T, PS, R> {
  return { ...def, kind: PLUGIN_KIND, contractVersion: CONTRACT_VERSION };
}

/**
 * Declares a stage. `P` is the job's validated parameter type; pass it explicitly so the
 * plan and handler see typed parameters: `defineStage<Params>()({...})`.
 */
export function defineStage<P>() {
  return <I, O>(def: StageDefinition<P, I, O>): StageDefinition<P, I, O> => def;
}

/** Typed view of the previous stage's outputs: `outputsOf(greeting, ctx.previous)`. */
export function outputsOf<S extends StageDefinition>(
  _stage: S,
  previous: TaskOutcome[],
): Array<TaskOutcome<StageOutput<S>> & { output: StageOutput<S> }> {
  return previous.filter((t) => t.status === 'completed') as Array<
    TaskOutcome<StageOutput<S>> & { output: StageOutput<S> }
  >;
}
