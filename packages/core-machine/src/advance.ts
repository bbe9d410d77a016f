/**
 * The control steps of a job: plan a stage (create its tasks) and aggregate (finish the job).
 * Both run from `cm.control` messages and are idempotent: a duplicate message finds the step
 * already done (compare-and-set on `jobs.current_stage` / `jobs.status`) and does nothing.
 * A plugin's plan or aggregate that throws fails the job with its message; only infrastructure
 * errors escape, and pg-boss retries those.
 */
import { withTransaction } from './db.ts';
import type { AnyJobDefinition, Logger, StageDefinition, TaskOutcome } from './define-job.ts';
import { toStoredError } from './errors.ts';
import { taskId as makeTaskId } from './job-id.ts';
import { addEvent, failJob, sendTasks } from './ledger.ts';
import { withFields } from './log.ts';
import type { CoreMachine } from './machine.ts';
import { completeStage } from './settle.ts';
import { zodIssues } from './machine.ts';

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
async function completedOutputs(machine: CoreMachine, jobId: string, stage: number): Promise<any[]> {
  return (await loadOutcomes(machine, jobId, stage)).filter((t) => t.status === 'completed');
}

export async function loadOutcomes(machine: CoreMachine, jobId: string, stage: number): Promise<TaskOutcome[]> {
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
  machine: CoreMachine,
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

export async function planStage(
  machine: CoreMachine,
  jobId: string,
  stageIndex: number,
  signal: AbortSignal,
): Promise<void> {
  const { t } = machine;
  const {
    rows: [job],
  } = await machine.pool.query(`SELECT * FROM ${t.jobs} WHERE id = $1`, [jobId]);
  if (!job || (job.status !== 'queued' && job.status !== 'processing') || job.current_stage >= stageIndex) return;
  const plugin: AnyJobDefinition | undefined = machine.plugins.get(job.type);
  const log = withFields(machine.log, { job_id: jobId, job_type: job.type, stage: stageIndex });
  if (!plugin) {
    await failAndLog(
      machine,
      jobId,
      'CM_ERR_UNKNOWN_JOB_TYPE',
      new Error(`No plugin loaded for job type ${job.type}`),
      undefined,
      log,
    );
    return;
  }
  const stage = plugin.stages[stageIndex - 1];
  if (!stage) return;

  let specs: Array<{ key: string; input: unknown }>;
  try {
    const previous = stageIndex > 1 ? await loadOutcomes(machine, jobId, stageIndex - 1) : [];
    const planned = await stage.plan({
      jobId,
      jobType: job.type,
      params: job.parameters,
      stage: { index: stageIndex, name: stage.name },
      previous,
      outputs: (s: StageDefinition) => completedOutputs(machine, jobId, stageIndexOf(plugin, s, stageIndex)),
      db: machine.pool,
      ledger: machine.ledger,
      services: machine.services,
      log,
      signal,
    });
    if (!Array.isArray(planned))
      throw new Error(`plan of stage '${stage.name}' returned ${typeof planned}, expected an array of {key, input}`);
    const seen = new Set<string>();
    specs = planned.map((spec, i) => {
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
  } catch (err) {
    await failAndLog(machine, jobId, 'PLAN_FAILED', err, stage.name, log);
    return;
  }

  const maxAttempts = Math.max(1, stage.retry?.maxAttempts ?? machine.config.maxAttempts);
  const lease = Math.max(stage.leaseSeconds ?? machine.config.leaseSeconds, 1);
  await withTransaction(machine.pool, async (client) => {
    const {
      rows: [locked],
    } = await client.query(`SELECT status, current_stage FROM ${t.jobs} WHERE id = $1 FOR UPDATE`, [jobId]);
    if (!locked || (locked.status !== 'queued' && locked.status !== 'processing') || locked.current_stage >= stageIndex)
      return;
    await client.query(
      `UPDATE ${t.jobs} SET status = 'processing', current_stage = $2, started_at = COALESCE(started_at, now()), updated_at = now() WHERE id = $1`,
      [jobId, stageIndex],
    );
    await client.query(`INSERT INTO ${t.stages} (job_id, stage_index, name, total) VALUES ($1, $2, $3, $4)`, [
      jobId,
      stageIndex,
      stage.name,
      specs.length,
    ]);
    await addEvent(client, t, jobId, 'stage_started', {
      stage: stageIndex,
      message: `${stage.name}: ${specs.length} task(s)`,
    });
    for (let i = 0; i < specs.length; i += INSERT_CHUNK) {
      const chunk = specs.slice(i, i + INSERT_CHUNK);
      const ids = chunk.map((s) => makeTaskId(jobId, stageIndex, s.key));
      await client.query(
        `INSERT INTO ${t.tasks} (id, job_id, stage_index, key, input, max_attempts, lease_seconds)
         SELECT id, $1, $2, key, input, $3, $4 FROM unnest($5::text[], $6::text[], $7::jsonb[]) AS u(id, key, input)`,
        [
          jobId,
          stageIndex,
          maxAttempts,
          lease,
          ids,
          chunk.map((s) => s.key),
          chunk.map((s) => JSON.stringify(s.input ?? null)),
        ],
      );
      await sendTasks(machine.boss, client, job.type, ids, { perMessage: plugin.queue?.tasksPerMessage ?? 1 });
    }
    if (specs.length === 0) {
      await completeStage(client, machine, jobId, stageIndex, plugin.stages.length, 0);
    }
  });
}

export async function aggregateJob(machine: CoreMachine, jobId: string): Promise<void> {
  const { t } = machine;
  const {
    rows: [job],
  } = await machine.pool.query(`SELECT * FROM ${t.jobs} WHERE id = $1`, [jobId]);
  if (!job || job.status !== 'processing') return;
  const plugin = machine.plugins.get(job.type);
  if (!plugin) return;
  const { rows: stageRows } = await machine.pool.query(
    `SELECT * FROM ${t.stages} WHERE job_id = $1 ORDER BY stage_index`,
    [jobId],
  );
  if (stageRows.length !== plugin.stages.length || stageRows.some((s) => s.status !== 'completed')) return; // not finished: spurious message
  const {
    rows: [{ retries }],
  } = await machine.pool.query(
    `SELECT COALESCE(sum(GREATEST(attempts - 1, 0)), 0)::int AS retries FROM ${t.tasks} WHERE job_id = $1`,
    [jobId],
  );
  let result: unknown;
  try {
    const raw = await plugin.aggregate({
      jobId,
      jobType: job.type,
      params: job.parameters,
      retries,
      db: machine.pool,
      ledger: machine.ledger,
      services: machine.services,
      log: withFields(machine.log, { job_id: jobId, job_type: job.type }),
      outputs: (s: StageDefinition) => completedOutputs(machine, jobId, stageIndexOf(plugin, s)),
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
        return loadOutcomes(machine, jobId, idx + 1);
      },
    });
    const parsed = plugin.result.safeParse(raw);
    if (!parsed.success)
      throw new Error(
        `aggregate returned a result that does not match the job's result schema: ${zodIssues(parsed.error, 'result')
          .map((x) => `${x.path}: ${x.message}`)
          .join('; ')}`,
      );
    result = parsed.data;
  } catch (err) {
    await failAndLog(machine, jobId, 'AGGREGATE_FAILED', err, undefined, machine.log);
    return;
  }
  const failedTasks = stageRows.reduce((n, s) => n + s.failed, 0);
  await withTransaction(machine.pool, async (client) => {
    const status = failedTasks > 0 ? 'completed_with_errors' : 'completed';
    const { rowCount } = await client.query(
      `UPDATE ${t.jobs} SET status = $2, result = $3, completed_at = now(), updated_at = now() WHERE id = $1 AND status = 'processing'`,
      [jobId, status, JSON.stringify(result ?? null)],
    );
    if (rowCount) await addEvent(client, t, jobId, 'job_completed', { message: status, data: { failedTasks } });
  });
}
