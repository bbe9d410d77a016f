/** Shared pieces of the fault tests: worker child processes on a test's own PostgreSQL. */
import type { ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import type { MachineConfig } from '@coremachine/core-machine';
import type pg from 'pg';
import { RUNS_TABLE } from '../fixtures/fault-jobs.ts';
import { REPO, startTs } from './helpers.ts';

const FAULT_WORKER = join(REPO, 'tests/fixtures/fault-worker.ts');

export interface WorkerProcess {
  child: ChildProcess;
  id: string;
  output: () => string;
  /** Resolves with the exit code and when it happened (ms since epoch). */
  exited: Promise<{ code: number | null; at: number }>;
}

export async function startFaultWorker(
  url: string,
  schema: string,
  config: Partial<MachineConfig> = {},
  env: Record<string, string> = {},
): Promise<WorkerProcess> {
  const { child, output } = await startTs(FAULT_WORKER, [schema], /ready \S+/, {
    cwd: join(REPO, 'tests'),
    env: { DATABASE_URL: url, CM_TEST_CONFIG: JSON.stringify(config), ...env },
  });
  const id = /ready (\S+)/.exec(output())![1]!;
  const exited = new Promise<{ code: number | null; at: number }>((resolve) => {
    if (child.exitCode !== null) resolve({ code: child.exitCode, at: Date.now() });
    child.once('exit', (code) => resolve({ code, at: Date.now() }));
  });
  return { child, id, output, exited };
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Polls `fn` until it returns a value, riding out database errors (an outage in progress). */
export async function until<T>(
  fn: () => Promise<T | undefined | null | false>,
  timeoutMs: number,
  what: string,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let lastError: unknown;
  while (Date.now() < deadline) {
    try {
      const v = await fn();
      if (v) return v;
    } catch (err) {
      lastError = err;
    }
    await sleep(100);
  }
  throw new Error(
    `${what} not reached within ${timeoutMs} ms${lastError ? ` (last error: ${(lastError as Error).message})` : ''}`,
  );
}

export interface RunRow {
  task_key: string;
  attempt: number;
  pid: number;
  started_at: Date;
  finished_at: Date | null;
}

export async function runsOf(pool: pg.Pool, jobId: string): Promise<RunRow[]> {
  const { rows } = await pool.query<RunRow>(
    `SELECT task_key, attempt, pid, started_at, finished_at FROM ${RUNS_TABLE} WHERE job_id = $1 ORDER BY task_key, id`,
    [jobId],
  );
  return rows;
}
