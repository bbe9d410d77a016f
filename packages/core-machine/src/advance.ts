/**
 * The control steps of a job: plan a stage (create its tasks) and aggregate (finish the job).
 * Both run from `cm.control` messages and are idempotent: a duplicate message finds the step
 * already done (compare-and-set on `jobs.current_stage` / `jobs.status`) and does nothing.
 * A plugin's plan or aggregate that throws fails the job with its message; only infrastructure
 * errors escape, and pg-boss retries those.
 *
 * Steps come in batches (one fetch of control messages, any number of jobs): the ledger reads
 * and writes of a batch are a handful of statements whatever its size, the plugins' plans and
 * aggregates run side by side, and each batch commits its plans in one transaction and its
 * results in one statement.
 */
import { withTransaction, type PoolClient } from './db.ts';
import type { AnyJobDefinition, Logger, StageDefinition, TaskOutcome } from './define-job.ts';
import { toStoredError } from './errors.ts';
import { taskId as makeTaskId } from './job-id.ts';
import { addEvents, sendTaskMessages, taskMessages, type LedgerEvent } from './ledger.ts';
import { withFields } from './log.ts';
import { metrics } from './metrics.ts';
import { zodIssues, type Engine } from './engine.ts';
import { closeStages, failJob } from './transitions.ts';

const INSERT_CHUNK = 5_000;

/** The 1-based index of a stage object (or one with its name) in a plugin, or an error naming them. */
export function stageIndexOf(plugin: AnyJobDefinition, stage: StageDefinition, before?: number): number {
  let idx = plugin.stages.indexOf(stage);
  if (idx < 0) idx = plugin.stages.findIndex((s) => s.name === stage.name);
  if (idx < 0)
    throw new Error(
      `stage ${JSON.stringify(stage.name)} is not a stage of ${plugin.type}; stages: ${plugin.stages.map((s) => s.name).join(', ')}`,
    );
  if (before !== undefined && idx + 1 >= before)
    throw new Error(`stage ${JSON.stringify(stage.name)} is not before stage ${before} of ${plugin.type}`);
  return idx + 1;
}

/** Completed outcomes of a stage (typed by the caller through `CompletedOutcome`). */
async function completedOutputs(machine: Engine, jobId: string, stage: number): Promise<any[]> {
  return (await loadOutcomes(machine, jobId, stage)).filter((t) => t.status === 'completed');
}

export async function loadOutcomes(machine: Engine, jobId: string, stage: number): Promise<TaskOutcome[]> {
  const { rows } = await machine.pool.query(
    `SELECT id, key, status, output, error, attempts FROM ${machine.t.tasks} WHERE job_id = $1 AND stage_index = $2 ORDER BY key`,
    [jobId, stage],
  );
  return rows.map((r) => ({
    id: r.id,
    key: r.key,
    status: r.status,
    output: r.output ?? null,
    error: r.error ?? null,
    attempts: r.attempts,
  }));
}

async function failAndLog(
  machine: Engine,
  jobId: string,
  code: string,
  err: unknown,
  stage: string | undefined,
  log: Logger,
) {
  const stored = toStoredError(err);
  log.warn('job failed', { jobId, code, error: stored.message });
  await withTransaction(machine.pool, (c) =>
    failJob(c, machine.t, jobId, { code, message: stored.message, detail: stored.detail, ...(stage ? { stage } : {}) }),
  );
}

/**
 * Waits for every piece of `work` and commits the results in groups as they become ready: the
 * results that arrive together go in one commit, and a slow plugin step never holds back the
 * commits of the fast ones. A commit that fails stops further commits; the error is thrown once
 * every piece of work has ended (nothing of this batch runs on after it returns).
 */
export async function commitAsReady<T>(
  work: Array<Promise<T | null>>,
  commit: (batch: T[]) => Promise<void>,
): Promise<void> {
  const ready: T[] = [];
  let pending = work.length;
  let wake: (() => void) | null = null;
  let failure: { error: unknown } | null = null;
  for (const w of work)
    void w
      .then(
        (v) => {
          if (v !== null) ready.push(v);
        },
        (error: unknown) => {
          failure ??= { error };
        },
      )
      .finally(() => {
        pending--;
        wake?.();
      });
  while (pending > 0 || ready.length) {
    if (!ready.length) {
      await new Promise<void>((resolve) => (wake = resolve));
      wake = null;
      continue;
    }
    // Let the results that resolve in the same turn join this commit.
    await new Promise((resolve) => setImmediate(resolve));
    const batch = ready.splice(0);
    if (failure) continue;
    try {
      await commit(batch);
    } catch (error) {
      failure = { error };
    }
  }
  if (failure) throw (failure as { error: unknown }).error;
}

/** Plugin plans (or aggregates) of one batch running at once; the rest wait for a free one. */
const STEP_PARALLELISM = 16;

/** `items.map(fn)`, at most `limit` calls of `fn` running at once. */
function mapLimited<T, R>(items: T[], limit: number, fn: (item: T) => Promise<R>): Array<Promise<R>> {
  let running = 0;
  const waiting: Array<() => void> = [];
  return items.map(async (item) => {
    if (running >= limit) await new Promise<void>((resolve) => waiting.push(resolve));
    running++;
    try {
      return await fn(item);
    } finally {
      running--;
      waiting.shift()?.();
    }
  });
}

/** A job row as the control steps read it. */
export interface JobRow {
  id: string;
  type: string;
  status: string;
  current_stage: number;
  total_stages: number;
  parameters: Record<string, unknown>;
}

/** Reads the job rows of a batch of control steps in one statement. */
export async function loadJobs(machine: Engine, jobIds: string[]): Promise<Map<string, JobRow>> {
  if (!jobIds.length) return new Map();
  const { rows } = await machine.pool.query<JobRow>(
    `SELECT id, type, status, current_stage, total_stages, parameters FROM ${machine.t.jobs} WHERE id = ANY($1)`,
    [jobIds],
  );
  return new Map(rows.map((r) => [r.id, r]));
}

export interface PlanStep {
  jobId: string;
  stage: number;
  /** Aborted when the step's queue message is given up (pg-boss). */
  signal: AbortSignal;
}

interface Planned {
  job: JobRow;
  plugin: AnyJobDefinition;
  stageIndex: number;
  stage: StageDefinition;
  specs: Array<{ key: string; input: unknown }>;
}

/** Outcomes of the previous stage of each step (stage > 1), in one statement. */
async function previousOutcomes(
  machine: Engine,
  steps: Array<{ jobId: string; stage: number }>,
): Promise<Map<string, TaskOutcome[]>> {
  const wanted = steps.filter((s) => s.stage > 1);
  const out = new Map<string, TaskOutcome[]>(wanted.map((s) => [s.jobId, []]));
  if (!wanted.length) return out;
  const { rows } = await machine.pool.query(
    `SELECT tk.job_id, tk.id, tk.key, tk.status, tk.output, tk.error, tk.attempts
     FROM ${machine.t.tasks} tk JOIN unnest($1::text[], $2::int[]) AS u(job_id, stage)
       ON tk.job_id = u.job_id AND tk.stage_index = u.stage
     ORDER BY tk.job_id, tk.key`,
    [wanted.map((s) => s.jobId), wanted.map((s) => s.stage - 1)],
  );
  for (const r of rows)
    out.get(r.job_id)?.push({
      id: r.id,
      key: r.key,
      status: r.status,
      output: r.output ?? null,
      error: r.error ?? null,
      attempts: r.attempts,
    });
  return out;
}

/** Runs the plugin's plan of one step and checks what it returns; throws what fails the job. */
async function runPlan(
  machine: Engine,
  job: JobRow,
  plugin: AnyJobDefinition,
  stageIndex: number,
  stage: StageDefinition,
  previous: TaskOutcome[],
  signal: AbortSignal,
  log: Logger,
): Promise<Array<{ key: string; input: unknown }>> {
  const planned = await stage.plan({
    jobId: job.id,
    jobType: job.type,
    params: job.parameters,
    stage: { index: stageIndex, name: stage.name },
    previous,
    outputs: (s: StageDefinition) => completedOutputs(machine, job.id, stageIndexOf(plugin, s, stageIndex)),
    db: machine.pool,
    ledger: machine.ledger,
    services: machine.services,
    log,
    signal,
  });
  if (!Array.isArray(planned))
    throw new Error(`plan of stage '${stage.name}' returned ${typeof planned}, expected an array of {key, input}`);
  const seen = new Set<string>();
  return planned.map((spec, i) => {
    if (!spec || typeof spec.key !== 'string' || !spec.key)
      throw new Error(`plan of stage '${stage.name}': task ${i} has no string key`);
    if (seen.has(spec.key))
      throw new Error(`plan of stage '${stage.name}': duplicate task key ${JSON.stringify(spec.key)}`);
    seen.add(spec.key);
    const parsed = stage.input.safeParse(spec.input);
    if (!parsed.success) {
      throw new Error(
        `plan of stage '${stage.name}': task ${JSON.stringify(spec.key)} input invalid: ${zodIssues(
          parsed.error,
          'input',
        )
          .map((x) => `${x.path}: ${x.message}`)
          .join('; ')}`,
      );
    }
    return { key: spec.key, input: parsed.data };
  });
}

/**
 * Plans a batch of stages (one per job): reads, runs the plugins' plans side by side, then
 * creates every stage row, task row and task message of the batch in one transaction.
 */
export async function planStages(machine: Engine, steps: PlanStep[], jobs: Map<string, JobRow>): Promise<void> {
  const due = steps.filter((s) => {
    const job = jobs.get(s.jobId);
    return job && (job.status === 'queued' || job.status === 'processing') && job.current_stage < s.stage;
  });
  if (!due.length) return;
  const previous = await previousOutcomes(machine, due);
  const work = mapLimited(due, STEP_PARALLELISM, async (step): Promise<Planned | null> => {
    const job = jobs.get(step.jobId)!;
    const log = withFields(machine.log, { job_id: job.id, job_type: job.type, stage: step.stage });
    const plugin = machine.plugins.get(job.type);
    if (!plugin) {
      await failAndLog(
        machine,
        job.id,
        'CM_ERR_UNKNOWN_JOB_TYPE',
        new Error(`No plugin loaded for job type ${job.type}`),
        undefined,
        log,
      );
      return null;
    }
    const stage = plugin.stages[step.stage - 1];
    if (!stage) return null;
    try {
      const specs = await runPlan(
        machine,
        job,
        plugin,
        step.stage,
        stage,
        previous.get(job.id) ?? [],
        step.signal,
        log,
      );
      return { job, plugin, stageIndex: step.stage, stage, specs };
    } catch (err) {
      await failAndLog(machine, job.id, 'PLAN_FAILED', err, stage.name, log);
      return null;
    }
  });
  await commitAsReady(work, (planned) =>
    withTransaction(machine.pool, (client) => commitPlans(client, machine, planned)),
  );
}

async function commitPlans(client: PoolClient, machine: Engine, input: Planned[]): Promise<void> {
  const { t } = machine;
  // Job rows locked in id order (as settle, cancel and retry do); a step another worker (or a
  // duplicate message) already took is dropped here.
  const { rows: locked } = await client.query(
    `SELECT id, status, current_stage FROM ${t.jobs} WHERE id = ANY($1) ORDER BY id FOR UPDATE`,
    [input.map((p) => p.job.id)],
  );
  const state = new Map(locked.map((r) => [r.id as string, r]));
  const planned = input.filter((p) => {
    const r = state.get(p.job.id);
    return r && (r.status === 'queued' || r.status === 'processing') && r.current_stage < p.stageIndex;
  });
  if (!planned.length) return;
  await client.query(
    `UPDATE ${t.jobs} j SET status = 'processing', current_stage = u.stage, started_at = COALESCE(j.started_at, now()), updated_at = now()
     FROM unnest($1::text[], $2::int[]) AS u(id, stage) WHERE j.id = u.id`,
    [planned.map((p) => p.job.id), planned.map((p) => p.stageIndex)],
  );
  await client.query(
    `INSERT INTO ${t.stages} (job_id, stage_index, name, total) SELECT * FROM unnest($1::text[], $2::int[], $3::text[], $4::int[])`,
    [
      planned.map((p) => p.job.id),
      planned.map((p) => p.stageIndex),
      planned.map((p) => p.stage.name),
      planned.map((p) => p.specs.length),
    ],
  );
  const events: LedgerEvent[] = planned.map((p) => ({
    jobId: p.job.id,
    kind: 'stage_started',
    stage: p.stageIndex,
    message: `${p.stage.name}: ${p.specs.length} task(s)`,
  }));
  await addEvents(client, t, events);
  // Task rows of the whole batch, INSERT_CHUNK at a time.
  const rows = planned.flatMap((p) => {
    const maxAttempts = Math.max(1, p.stage.retry?.maxAttempts ?? machine.config.maxAttempts);
    const lease = Math.max(p.stage.leaseSeconds ?? machine.config.leaseSeconds, 1);
    return p.specs.map((s) => ({
      id: makeTaskId(p.job.id, p.stageIndex, s.key),
      jobId: p.job.id,
      stage: p.stageIndex,
      key: s.key,
      input: JSON.stringify(s.input ?? null),
      maxAttempts,
      lease,
    }));
  });
  for (let i = 0; i < rows.length; i += INSERT_CHUNK) {
    const chunk = rows.slice(i, i + INSERT_CHUNK);
    await client.query(
      `INSERT INTO ${t.tasks} (id, job_id, stage_index, key, input, max_attempts, lease_seconds)
       SELECT * FROM unnest($1::text[], $2::text[], $3::int[], $4::text[], $5::jsonb[], $6::int[], $7::int[])`,
      [
        chunk.map((r) => r.id),
        chunk.map((r) => r.jobId),
        chunk.map((r) => r.stage),
        chunk.map((r) => r.key),
        chunk.map((r) => r.input),
        chunk.map((r) => r.maxAttempts),
        chunk.map((r) => r.lease),
      ],
    );
  }
  // Task messages: each job's ids grouped `tasksPerMessage` a message, one insert per job type.
  const byType = new Map<string, Array<{ taskIds: string[] }>>();
  for (const p of planned) {
    if (!p.specs.length) continue;
    const ids = p.specs.map((s) => makeTaskId(p.job.id, p.stageIndex, s.key));
    const list = byType.get(p.job.type) ?? [];
    list.push(...taskMessages(ids, p.plugin.queue?.tasksPerMessage ?? 1));
    byType.set(p.job.type, list);
  }
  for (const [type, messages] of byType) await sendTaskMessages(machine.boss, client, type, messages);
  // A stage with no task closes at once, through the same step as a settle.
  await closeStages(
    client,
    machine,
    planned
      .filter((p) => p.specs.length === 0)
      .map((p) => ({ jobId: p.job.id, stage: p.stageIndex, totalStages: p.plugin.stages.length, failed: 0 })),
  );
}

/**
 * Aggregates a batch of jobs whose stages have all completed: stage rows and retry counts read
 * in two statements, the plugins' aggregates run side by side, and the results recorded (with
 * their `job_completed` events) in one statement.
 */
export async function aggregateJobs(machine: Engine, jobIds: string[], jobs: Map<string, JobRow>): Promise<void> {
  const { t } = machine;
  const due = [...new Set(jobIds)]
    .map((id) => jobs.get(id))
    .filter((j): j is JobRow => !!j && j.status === 'processing' && machine.plugins.has(j.type));
  if (!due.length) return;
  const ids = due.map((j) => j.id);
  const { rows: allStages } = await machine.pool.query(
    `SELECT * FROM ${t.stages} WHERE job_id = ANY($1) ORDER BY job_id, stage_index`,
    [ids],
  );
  const { rows: retryRows } = await machine.pool.query(
    `SELECT job_id, COALESCE(sum(GREATEST(attempts - 1, 0)), 0)::int AS retries FROM ${t.tasks}
     WHERE job_id = ANY($1) GROUP BY job_id`,
    [ids],
  );
  const retries = new Map(retryRows.map((r) => [r.job_id as string, r.retries as number]));
  type Done = { id: string; status: string; result: unknown; failed: number };
  const work = mapLimited(due, STEP_PARALLELISM, async (job): Promise<Done | null> => {
    const plugin = machine.plugins.get(job.type)!;
    const stageRows = allStages.filter((s) => s.job_id === job.id);
    // Not finished: a spurious message.
    if (stageRows.length !== plugin.stages.length || stageRows.some((s) => s.status !== 'completed')) return null;
    const log = withFields(machine.log, { job_id: job.id, job_type: job.type });
    try {
      const raw = await plugin.aggregate({
        jobId: job.id,
        jobType: job.type,
        params: job.parameters,
        retries: retries.get(job.id) ?? 0,
        db: machine.pool,
        ledger: machine.ledger,
        services: machine.services,
        log,
        outputs: (s: StageDefinition) => completedOutputs(machine, job.id, stageIndexOf(plugin, s)),
        stages: stageRows.map((s) => ({
          index: s.stage_index,
          name: s.name,
          status: s.status,
          total: s.total,
          completed: s.completed,
          failed: s.failed,
        })),
        tasks: async (name: string) => {
          const idx = plugin.stages.findIndex((s) => s.name === name);
          if (idx < 0)
            throw new Error(
              `aggregate asked for unknown stage ${JSON.stringify(name)}; stages: ${plugin.stages.map((s) => s.name).join(', ')}`,
            );
          return loadOutcomes(machine, job.id, idx + 1);
        },
      });
      const parsed = plugin.result.safeParse(raw);
      if (!parsed.success)
        throw new Error(
          `aggregate returned a result that does not match the job's result schema: ${zodIssues(parsed.error, 'result')
            .map((x) => `${x.path}: ${x.message}`)
            .join('; ')}`,
        );
      const failed = stageRows.reduce((n, s) => n + s.failed, 0);
      return { id: job.id, status: failed > 0 ? 'completed_with_errors' : 'completed', result: parsed.data, failed };
    } catch (err) {
      await failAndLog(machine, job.id, 'AGGREGATE_FAILED', err, undefined, log);
      return null;
    }
  });
  await commitAsReady(work, (done) => recordResults(machine, done));
}

async function recordResults(
  machine: Engine,
  done: Array<{ id: string; status: string; result: unknown; failed: number }>,
): Promise<void> {
  const { t } = machine;
  // Results and their events in one statement (atomic without a transaction); job rows locked in
  // id order first, as every other writer of them does.
  const { rows } = await machine.pool.query(
    `WITH x AS (SELECT * FROM jsonb_to_recordset($1::jsonb) AS x(id text, status text, result jsonb, failed int)),
     lk AS MATERIALIZED (SELECT j.id FROM ${t.jobs} j WHERE j.id IN (SELECT id FROM x) ORDER BY j.id FOR NO KEY UPDATE),
     upd AS (
       UPDATE ${t.jobs} j SET status = x.status, result = x.result, completed_at = now(), updated_at = now()
       FROM x, lk WHERE j.id = x.id AND lk.id = x.id AND j.status = 'processing'
       RETURNING j.id, x.status, x.failed),
     ev AS (
       INSERT INTO ${t.events} (job_id, kind, message, data)
       SELECT id, 'job_completed', status, jsonb_build_object('failedTasks', failed) FROM upd)
     SELECT id, status FROM upd`,
    [JSON.stringify(done.map((d) => ({ ...d, result: d.result ?? null })))],
  );
  for (const r of rows) metrics.event('job_completed', r.status);
}
