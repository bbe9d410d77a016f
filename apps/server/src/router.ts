import {
  CONTRACT_ELEMENTS,
  CoreMachineError,
  deleteJob,
  formatComplianceTable,
  listRuns,
  parseDuration,
  purgeJobs,
  rerunJob,
  runEvents,
  TERMINAL_JOB_STATUSES,
  type CoreMachine,
  type JobRun,
  type JobParams,
  type JobParamsInput,
  type JobView,
  type Page,
} from '@coremachine/core-machine';
import { z } from 'zod';
import type { StaticPlugins } from './plugins.generated.ts';
import { tokensRouter } from './auth/router.ts';
import { PURGE_HOOKS } from './purge-hooks.ts';
import { adminProcedure, publicProcedure, readProcedure, router, submitProcedure } from './trpc.ts';

type Plugin = StaticPlugins[number];

/**
 * The parameters a caller writes for job type `P`: zod's input type, except that a field whose
 * input is `unknown` (a preprocess step, as hello_world's `n` that also accepts numeric text)
 * takes its validated type, so `{ n: 'ten' }` does not compile.
 */
export type ParamsInput<P> = RealInput<JobParamsInput<P>, JobParams<P>>;
type RealInput<I, O> = { [K in keyof I]: unknown extends I[K] ? (K extends keyof O ? O[K] : never) : I[K] };

/**
 * `{ type, params }` for each known job type: wrong params for a type do not compile, and
 * `params` may be left out only when the type has no required parameter.
 */
export type SubmitInput = {
  [P in Plugin as P['type']]: Partial<ParamsInput<P>> extends ParamsInput<P>
    ? { type: P['type']; params?: ParamsInput<P> }
    : { type: P['type']; params: ParamsInput<P> };
}[Plugin['type']];

const submitShape = z.strictObject({ type: z.string().min(1), params: z.unknown().optional() });
/** Shape check only; the per-type parameter validation happens in the engine (field-level errors). */
function parseSubmit(raw: unknown): SubmitInput {
  const parsed = submitShape.safeParse(raw);
  if (!parsed.success) {
    const issues = parsed.error.issues.map((i) => ({
      path: i.path.map(String).join('.') || 'input',
      message: i.message,
    }));
    throw new CoreMachineError('CM_ERR_INVALID_PARAMETERS', issues.map((i) => `${i.path}: ${i.message}`).join('; '), {
      issues,
    });
  }
  return parsed.data as SubmitInput;
}

const jobId = z.string().regex(/^[0-9a-f]{64}$/, 'jobId must be 64 lower-case hex characters');
const jobStatus = z.enum(['queued', 'processing', 'completed', 'completed_with_errors', 'failed', 'cancelled']);
const finalStatus = z.enum(['completed', 'completed_with_errors', 'failed', 'cancelled']);
/** `7d`, `12h`, `30m`, `90s` or seconds. */
const duration = z
  .string()
  .regex(/^\s*\d+(\.\d+)?\s*[smhdw]?\s*$/i, 'a duration such as 7d, 12h, 30m or 90s')
  .describe('a duration: 7d, 12h, 30m, 90s (or seconds)');
const taskStatus = z.enum(['queued', 'processing', 'completed', 'failed', 'cancelled']);

/**
 * A job with its runs: `runs` oldest first, the last one current (number `run`). Always set by
 * jobs.get and jobs.watch; optional in the type so that a list item (JobView) is one too.
 */
type JobWithRuns = JobView & { run?: number; runs?: JobRun[] };
async function jobWithRuns(machine: CoreMachine, id: string): Promise<JobWithRuns> {
  const job = await machine.requireJob(id);
  const runs = await listRuns(machine, id);
  return { ...job, run: runs.at(-1)?.run ?? 1, runs };
}

const listInput = z
  .object({
    status: jobStatus.optional(),
    type: z.string().optional(),
    createdAfter: z.iso.datetime({ offset: true }).optional(),
    createdBefore: z.iso.datetime({ offset: true }).optional(),
    cursor: z.string().nullish(),
    limit: z.number().int().min(1).max(200).default(20),
  })
  .default({ limit: 20 });

export const jobsRouter = router({
  types: readProcedure.query(({ ctx }) => ctx.machine.types()),
  compliance: readProcedure.query(({ ctx }) => ({
    reports: ctx.reports,
    elements: [...CONTRACT_ELEMENTS],
    table: formatComplianceTable(ctx.reports),
  })),
  submit: submitProcedure
    .input(parseSubmit)
    .mutation(({ ctx, input }) => ctx.machine.submit(input.type, input.params ?? {})),
  /** The job, with its runs (`runs`, oldest first; the last is the current one, number `run`). */
  get: readProcedure.input(z.object({ jobId })).query(({ ctx, input }) => jobWithRuns(ctx.machine, input.jobId)),
  list: readProcedure.input(listInput).query(({ ctx, input }) => ctx.machine.listJobs(input)),
  /** The same page as `list`, streamed (SSE) again each time one of its jobs changes. */
  watchList: readProcedure
    .input(listInput.unwrap().extend({ intervalMs: z.number().int().min(200).max(10_000).default(1000) }))
    .subscription(async function* ({ ctx, input, signal }): AsyncGenerator<Page<JobView>> {
      let last = '';
      while (!signal?.aborted) {
        const page = await ctx.machine.listJobs(input);
        const fingerprint = JSON.stringify([page.nextCursor, page.items.map((j) => [j.id, j.updatedAt, j.stages])]);
        if (fingerprint !== last) {
          last = fingerprint;
          yield page;
        }
        await new Promise((r) => setTimeout(r, input.intervalMs));
      }
    }),
  /** Full ids of the jobs whose id starts with `prefix` (newest first, at most `limit`): resolves short ids. */
  findIds: readProcedure
    .input(
      z.object({
        prefix: z.string().regex(/^[0-9a-f]{1,64}$/, 'an id prefix is lower-case hex characters'),
        limit: z.number().int().min(1).max(50).default(10),
      }),
    )
    .query(async ({ ctx, input }): Promise<string[]> => {
      const { rows } = await ctx.machine.pool.query<{ id: string }>(
        `SELECT id FROM ${ctx.machine.t.jobs} WHERE id LIKE $1 ORDER BY created_at DESC, id DESC LIMIT ${input.limit}`,
        [input.prefix + '%'],
      );
      return rows.map((r) => r.id);
    }),
  tasks: readProcedure
    .input(
      z.object({
        jobId,
        stage: z.number().int().min(1).optional(),
        status: taskStatus.optional(),
        cursor: z.string().nullish(),
        limit: z.number().int().min(1).max(1000).default(100),
      }),
    )
    .query(({ ctx, input }) => ctx.machine.listTasks(input.jobId, input)),
  /** The job's timeline, each event with its run; `run` keeps to one run's events. */
  events: readProcedure
    .input(
      z.object({
        jobId,
        afterId: z.number().int().min(0).default(0),
        limit: z.number().int().min(1).max(5000).default(500),
        run: z.number().int().min(1).optional(),
      }),
    )
    .query(({ ctx, input }) =>
      runEvents(ctx.machine, input.jobId, {
        afterId: input.afterId,
        limit: input.limit,
        ...(input.run !== undefined ? { run: input.run } : {}),
      }),
    ),
  cancel: adminProcedure.input(z.object({ jobId })).mutation(({ ctx, input }) => ctx.machine.cancel(input.jobId)),
  retry: adminProcedure.input(z.object({ jobId })).mutation(({ ctx, input }) => ctx.machine.retry(input.jobId)),
  /** Runs a settled job again, same id and parameters; the run that ended stays in `runs`. */
  rerun: adminProcedure.input(z.object({ jobId })).mutation(async ({ ctx, input }) => {
    await rerunJob(ctx.machine, input.jobId);
    return jobWithRuns(ctx.machine, input.jobId);
  }),
  /** Deletes a settled job with its tasks, events, runs, inventory rows and temporary blobs. */
  delete: adminProcedure.input(z.object({ jobId })).mutation(async ({ ctx, input }) => {
    const r = await deleteJob(ctx.machine, input.jobId, PURGE_HOOKS);
    return { deleted: r.jobId, tasks: r.tasks, events: r.events, ...r.extra };
  }),
  /** Purges settled jobs older than `olderThan` (optionally of some final statuses only), in batches. */
  purge: adminProcedure
    .input(
      z.object({
        olderThan: duration,
        statuses: z.array(finalStatus).min(1).optional(),
        maxJobs: z.number().int().min(1).optional(),
      }),
    )
    .mutation(async ({ ctx, input }) => {
      const r = await purgeJobs(ctx.machine, {
        olderThanSeconds: parseDuration(input.olderThan)!,
        hooks: PURGE_HOOKS,
        ...(input.statuses ? { statuses: input.statuses } : {}),
        ...(input.maxJobs ? { maxJobs: input.maxJobs } : {}),
      });
      return { skipped: r.skipped, jobs: r.jobs, tasks: r.tasks, events: r.events, batches: r.batches, ...r.extra };
    }),
  /** Streams the job (SSE) each time it changes, until it settles. */
  watch: readProcedure
    .input(z.object({ jobId, intervalMs: z.number().int().min(100).max(10_000).default(500) }))
    .subscription(async function* ({ ctx, input, signal }): AsyncGenerator<JobWithRuns> {
      let last = '';
      while (!signal?.aborted) {
        const job = await ctx.machine.requireJob(input.jobId);
        const fingerprint = JSON.stringify([job.status, job.currentStage, job.stages, job.updatedAt]);
        if (fingerprint !== last) {
          last = fingerprint;
          // The same shape as jobs.get; the runs are read only when the job changed.
          const runs = await listRuns(ctx.machine, input.jobId);
          yield { ...job, run: runs.at(-1)?.run ?? 1, runs };
        }
        if (TERMINAL_JOB_STATUSES.includes(job.status)) return;
        await new Promise((r) => setTimeout(r, input.intervalMs));
      }
    }),
});

export const appRouter = router({
  jobs: jobsRouter,
  tokens: tokensRouter,
  health: publicProcedure.query(async ({ ctx }) => {
    const core = await ctx.machine.health();
    // Every probe answers within its budget, so /health does too whatever storage is doing.
    const budget = <T>(p: Promise<T>, name: string) => {
      let timer: NodeJS.Timeout | undefined;
      return Promise.race([
        p,
        new Promise<never>((_, reject) => {
          timer = setTimeout(() => reject(new Error(`${name} did not answer within 1500 ms`)), 1_500);
        }),
      ]).finally(() => clearTimeout(timer));
    };
    const probes = Object.fromEntries(
      await Promise.all(
        Object.entries(ctx.probes).map(async ([name, probe]) => {
          try {
            return [name, await budget(probe(), name)] as const;
          } catch (err) {
            return [name, { ok: false, error: (err as Error).message }] as const;
          }
        }),
      ),
    );
    const plugins = {
      ok: ctx.reports.every((r) => r.compliant),
      loaded: ctx.reports.filter((r) => r.compliant).map((r) => r.type!),
      total: ctx.reports.length,
    };
    // Healthy needs a live worker somewhere (heartbeats in the database): an API alone runs nothing.
    const ok =
      core.database.ok && core.queue.ok && core.workers > 0 && plugins.ok && Object.values(probes).every((p) => p.ok);
    return {
      status: ok ? ('healthy' as const) : ('unhealthy' as const),
      version: ctx.version,
      database: core.database,
      queue: core.queue,
      workers: core.workers,
      liveWorkers: core.liveWorkers,
      unservedTypes: core.unservedTypes,
      plugins,
      ...probes,
    };
  }),
});

export type AppRouter = typeof appRouter;
