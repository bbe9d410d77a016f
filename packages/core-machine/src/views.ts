import type { JobStatus, StageStatus, TaskStatus } from './define-job.ts';
import type { StoredError } from './errors.ts';

/** Any JSON value (parameters, results, task input and output). */
export type Json = string | number | boolean | null | Json[] | { [key: string]: Json };

/** A job as the API returns it (`jobs.get`). */
export interface JobView {
  id: string;
  type: string;
  pluginVersion: string;
  status: JobStatus;
  parameters: Record<string, unknown>;
  currentStage: number;
  totalStages: number;
  stages: StageView[];
  result: Json;
  error: StoredError | null;
  createdAt: string;
  updatedAt: string;
  startedAt: string | null;
  completedAt: string | null;
}

export interface StageView {
  index: number;
  name: string;
  status: StageStatus | 'pending';
  total: number;
  completed: number;
  failed: number;
  startedAt: string | null;
  completedAt: string | null;
  /** For the running stage in `jobs.get`: what its unfinished tasks wait for. */
  waiting?: StageWaiting;
}

/** Why a running stage's tasks are not done yet (`jobs.get`). */
export interface StageWaiting {
  /** Queued tasks whose retry is due later; when the first one is due. */
  retryScheduled: number;
  nextRetryAt: string | null;
  /** Queued tasks due now: they wait for a free worker slot. */
  forWorkerSlot: number;
  /** No live worker serves this job type: queued tasks wait until one starts. */
  noLiveWorker: boolean;
  /** Running tasks by the worker holding their lease. */
  running: Array<{ workerId: string | null; workerLive: boolean; tasks: number; lastHeartbeatAt: string | null }>;
  /** The same, in one sentence. */
  summary: string;
}

export interface TaskView {
  id: string;
  key: string;
  stage: number;
  stageName: string;
  status: TaskStatus;
  attempts: number;
  maxAttempts: number;
  input: Json;
  output: Json;
  error: StoredError | null;
  progress: number | null;
  progressNote: string | null;
  createdAt: string;
  startedAt: string | null;
  completedAt: string | null;
}

export interface JobEvent {
  id: number;
  jobId: string;
  at: string;
  kind: string;
  stage: number | null;
  taskId: string | null;
  message: string | null;
  data: Json;
}

export interface SubmitResult {
  jobId: string;
  type: string;
  status: JobStatus;
  /** True when a job with the same id already existed: nothing new was created. */
  idempotent: boolean;
  parameters: Record<string, unknown>;
}

export interface Page<T> {
  items: T[];
  /** Pass back as `cursor` to get the next page; null on the last page. */
  nextCursor: string | null;
}

export const TERMINAL_JOB_STATUSES: readonly JobStatus[] = [
  'completed',
  'completed_with_errors',
  'failed',
  'cancelled',
];

const iso = (d: Date | null | undefined) => (d ? new Date(d).toISOString() : null);

export function toJobView(row: any, stageRows: any[], stageNames: string[]): JobView {
  const stages: StageView[] = stageNames.map((name, i) => {
    const s = stageRows.find((r) => r.stage_index === i + 1);
    return s
      ? {
          index: i + 1,
          name,
          status: s.status,
          total: s.total,
          completed: s.completed,
          failed: s.failed,
          startedAt: iso(s.started_at),
          completedAt: iso(s.completed_at),
        }
      : {
          index: i + 1,
          name,
          status: 'pending',
          total: 0,
          completed: 0,
          failed: 0,
          startedAt: null,
          completedAt: null,
        };
  });
  return {
    id: row.id,
    type: row.type,
    pluginVersion: row.plugin_version,
    status: row.status,
    parameters: row.parameters,
    currentStage: row.current_stage,
    totalStages: row.total_stages,
    stages,
    result: row.result ?? null,
    error: row.error ?? null,
    createdAt: iso(row.created_at)!,
    updatedAt: iso(row.updated_at)!,
    startedAt: iso(row.started_at),
    completedAt: iso(row.completed_at),
  };
}

export function toTaskView(row: any, stageNames: string[]): TaskView {
  return {
    id: row.id,
    key: row.key,
    stage: row.stage_index,
    stageName: stageNames[row.stage_index - 1] ?? `stage_${row.stage_index}`,
    status: row.status,
    attempts: row.attempts,
    maxAttempts: row.max_attempts,
    input: row.input,
    output: row.output ?? null,
    error: row.error ?? null,
    progress: row.progress ?? null,
    progressNote: row.progress_note ?? null,
    createdAt: iso(row.created_at)!,
    startedAt: iso(row.started_at),
    completedAt: iso(row.completed_at),
  };
}

export function toEvent(row: any): JobEvent {
  return {
    id: row.id,
    jobId: row.job_id,
    at: iso(row.at)!,
    kind: row.kind,
    stage: row.stage_index ?? null,
    taskId: row.task_id ?? null,
    message: row.message ?? null,
    data: row.data ?? null,
  };
}
