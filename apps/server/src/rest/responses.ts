/**
 * The shapes the jobs procedures answer with, as zod schemas: the OpenAPI document's response
 * schemas are generated from them. The engine's view types are the source of truth; the
 * compile-time checks at the bottom fail when a schema and its type drift apart (a field added,
 * removed or retyped on either side), and the REST test parses real answers with them (strict
 * objects: an unlisted field fails too).
 */
import type { JobEvent, JobRun, JobView, Page, SubmitResult, TaskView } from '@coremachine/core-machine';
import { z } from 'zod';

/** Every response schema, by the id it has under `components.schemas`. */
export const responseRegistry = z.registry<{ id: string }>();

const jobStatus = z.enum(['queued', 'processing', 'completed', 'completed_with_errors', 'failed', 'cancelled']);
const taskStatus = z.enum(['queued', 'processing', 'completed', 'failed', 'cancelled']);
const iso = z.string().describe('ISO 8601 instant');
const json = z.json().register(responseRegistry, { id: 'Json' });

const storedError = z
  .strictObject({
    code: z.string().describe('error code, e.g. CM_ERR_INVALID_PARAMETERS, TASK_TIMEOUT, BLOB_NOT_FOUND'),
    message: z.string(),
    detail: z.unknown().optional(),
    taskId: z.string().optional().describe('on job errors: the task that caused the failure'),
    stage: z.string().optional(),
  })
  .register(responseRegistry, { id: 'StoredError' });

const stageWaiting = z.strictObject({
  retryScheduled: z.int(),
  nextRetryAt: iso.nullable(),
  forWorkerSlot: z.int(),
  noLiveWorker: z.boolean(),
  running: z.array(
    z.strictObject({
      workerId: z.string().nullable(),
      workerLive: z.boolean(),
      tasks: z.int(),
      lastHeartbeatAt: iso.nullable(),
    }),
  ),
  summary: z.string(),
});

const stageView = z.strictObject({
  index: z.int(),
  name: z.string(),
  status: z.enum(['pending', 'processing', 'completed', 'failed', 'cancelled']),
  total: z.int(),
  completed: z.int(),
  failed: z.int(),
  startedAt: iso.nullable(),
  completedAt: iso.nullable(),
  waiting: stageWaiting.optional().describe('the running stage: what its unfinished tasks wait for'),
});

export const jobRunSchema = z
  .strictObject({
    run: z.int().min(1),
    status: jobStatus,
    current: z.boolean(),
    pluginVersion: z.string(),
    queuedAt: iso,
    startedAt: iso.nullable(),
    completedAt: iso.nullable(),
    tasks: z.int().nullable(),
    retries: z.int().nullable(),
    stages: z.array(
      z.strictObject({
        index: z.int(),
        name: z.string(),
        status: z.string(),
        total: z.int(),
        completed: z.int(),
        failed: z.int(),
      }),
    ),
    result: z.unknown(),
    error: z.unknown(),
  })
  .register(responseRegistry, { id: 'JobRun' });

const jobFields = {
  id: z.string().regex(/^[0-9a-f]{64}$/),
  type: z.string(),
  pluginVersion: z.string(),
  status: jobStatus,
  parameters: z.record(z.string(), z.unknown()),
  currentStage: z.int(),
  totalStages: z.int(),
  stages: z.array(stageView),
  result: json,
  error: storedError.nullable(),
  createdAt: iso,
  updatedAt: iso,
  startedAt: iso.nullable(),
  completedAt: iso.nullable(),
};

/** A job as listed (`jobs.list` items). */
export const jobListItemSchema = z.strictObject(jobFields).register(responseRegistry, { id: 'JobSummary' });
/** A job with its runs (`jobs.get`, `jobs.watch`, `jobs.rerun`). */
export const jobSchema = z
  .strictObject({
    ...jobFields,
    run: z.int().min(1).optional().describe('the current run (1, then 2 after a re-run, ...)'),
    runs: z.array(jobRunSchema).optional().describe('every run, oldest first; the last is the current one'),
  })
  .register(responseRegistry, { id: 'Job' });

export const taskSchema = z
  .strictObject({
    id: z.string(),
    key: z.string(),
    stage: z.int(),
    stageName: z.string(),
    status: taskStatus,
    attempts: z.int(),
    maxAttempts: z.int(),
    input: json,
    output: json,
    error: storedError.nullable(),
    progress: z.number().nullable(),
    progressNote: z.string().nullable(),
    createdAt: iso,
    startedAt: iso.nullable(),
    completedAt: iso.nullable(),
  })
  .register(responseRegistry, { id: 'Task' });

export const eventSchema = z
  .strictObject({
    id: z.int(),
    jobId: z.string(),
    at: iso,
    kind: z.string().describe('job_submitted, stage_started, task_retried, job_completed, job_rerun, actor, ...'),
    stage: z.int().nullable(),
    taskId: z.string().nullable(),
    message: z.string().nullable(),
    data: json,
    run: z.int().min(1).describe('the run the event belongs to'),
  })
  .register(responseRegistry, { id: 'JobEvent' });

const page = <T extends z.ZodType>(item: T) =>
  z.strictObject({
    items: z.array(item),
    nextCursor: z.string().nullable().describe('pass back as `cursor` for the next page; null on the last'),
  });

export const submitResultSchema = z
  .strictObject({
    jobId: z.string(),
    type: z.string(),
    status: jobStatus,
    idempotent: z.boolean().describe('true when these parameters already made this job'),
    parameters: z.record(z.string(), z.unknown()),
  })
  .register(responseRegistry, { id: 'SubmitResult' });

const typeSchema = z.strictObject({
  type: z.string(),
  version: z.string(),
  description: z.string(),
  stages: z.array(z.string()),
  parametersSchema: z.unknown().describe('JSON Schema of the parameters'),
});

const counts = z.record(z.string(), z.union([z.number(), z.boolean(), z.string()]));

const named = <T extends z.ZodType>(id: string, schema: T): T => {
  responseRegistry.add(schema, { id });
  return schema;
};

/** The 200 (201 for a created job) answer of each jobs procedure: its schema's id. */
export const RESPONSES: Record<string, { id: string; schema: z.ZodType }> = Object.fromEntries(
  (
    [
      ['jobs.submit', 'SubmitResult', submitResultSchema],
      ['jobs.list', 'JobPage', named('JobPage', page(jobListItemSchema))],
      ['jobs.get', 'Job', jobSchema],
      ['jobs.cancel', 'JobSummary', jobListItemSchema],
      ['jobs.retry', 'JobSummary', jobListItemSchema],
      ['jobs.rerun', 'Job', jobSchema],
      [
        'jobs.delete',
        'DeleteResult',
        named(
          'DeleteResult',
          counts.describe('`deleted` (the job id) and what went: tasks, events, inventory_rows, blobs'),
        ),
      ],
      [
        'jobs.purge',
        'PurgeResult',
        named('PurgeResult', counts.describe('`skipped`, `jobs`, `tasks`, `events`, `batches` and what hooks removed')),
      ],
      ['jobs.tasks', 'TaskPage', named('TaskPage', page(taskSchema))],
      ['jobs.events', 'JobEvents', named('JobEvents', z.array(eventSchema))],
      ['jobs.findIds', 'JobIds', named('JobIds', z.array(z.string()))],
      ['jobs.types', 'JobTypes', named('JobTypes', z.array(typeSchema))],
      [
        'jobs.compliance',
        'Compliance',
        named(
          'Compliance',
          z.looseObject({ reports: z.array(z.unknown()), elements: z.array(z.string()), table: z.string() }),
        ),
      ],
    ] as Array<[string, string, z.ZodType]>
  ).map(([procedure, id, schema]) => [procedure, { id, schema }]),
);

/** The response schemas as OpenAPI 3.1 components (JSON Schema 2020-12), refs between them kept. */
export function responseComponents(): Record<string, unknown> {
  const { schemas } = z.toJSONSchema(responseRegistry, {
    io: 'output',
    unrepresentable: 'any',
    uri: (id) => `#/components/schemas/${id}`,
  });
  for (const schema of Object.values(schemas)) {
    delete (schema as Record<string, unknown>)['$schema'];
    delete (schema as Record<string, unknown>)['$id']; // a component is named by its key
  }
  return schemas;
}

// Compile-time: each schema and the engine's type describe the same object, both ways.
type Same<A, B> = [A] extends [B] ? ([B] extends [A] ? true : false) : false;
type Check<T extends true> = T;
type JobRow = Omit<z.output<typeof jobListItemSchema>, 'result' | 'parameters'>;
export type ResponseTypeChecks = [
  Check<Same<JobRow, Omit<JobView, 'result' | 'parameters'>>>,
  Check<Same<Omit<z.output<typeof taskSchema>, 'input' | 'output'>, Omit<TaskView, 'input' | 'output'>>>,
  Check<Same<Omit<z.output<typeof eventSchema>, 'data'>, Omit<JobEvent & { run: number }, 'data'>>>,
  Check<Same<z.output<typeof submitResultSchema>, SubmitResult>>,
  Check<Same<keyof z.output<typeof jobRunSchema>, keyof JobRun>>,
  Check<Same<keyof z.output<ReturnType<typeof page<typeof taskSchema>>>, keyof Page<TaskView>>>,
];
