/**
 * Health and readiness, each probe within a time budget: they answer within ~1.5 s whatever the
 * state of PostgreSQL. Live workers come from their heartbeats in the database, so an API
 * process sees the workers of every process.
 */
import { liveWorkers, type Engine, type LiveWorker } from './engine.ts';
import { CONTROL_QUEUE } from './ledger.ts';

export interface HealthReport {
  database: { ok: boolean; latencyMs: number; error?: string };
  queue: { ok: boolean; error?: string };
  /** Live workers (heartbeat within workerLivenessSeconds), any process. */
  workers: number;
  liveWorkers: LiveWorker[];
  /** Job types that no live worker serves: their tasks wait until one starts. */
  unservedTypes: string[];
}

/** Resolves within `ms` whatever `p` does: its value, or the error (a timeout included). */
export async function withBudget<T>(
  p: Promise<T>,
  ms: number,
  what: string,
): Promise<{ ok: true; value: T } | { ok: false; error: string }> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<{ ok: false; error: string }>((resolve) => {
    timer = setTimeout(() => resolve({ ok: false, error: `${what} did not answer within ${ms} ms` }), ms);
  });
  try {
    return await Promise.race([
      p.then(
        (value) => ({ ok: true as const, value }),
        (err: unknown) => ({ ok: false as const, error: (err as Error).message }),
      ),
      timeout,
    ]);
  } finally {
    clearTimeout(timer);
  }
}

/** Database, queue and live workers, each probe within `budgetMs` (default 1.5 s). */
export async function health(
  engine: Pick<Engine, 'pool' | 'boss' | 't' | 'config' | 'plugins'>,
  options: { budgetMs?: number } = {},
): Promise<HealthReport> {
  const budget = options.budgetMs ?? 1_500;
  const t0 = performance.now();
  const [db, queue, live] = await Promise.all([
    withBudget(engine.pool.query('select 1'), budget, 'database'),
    withBudget(engine.boss.getQueue(CONTROL_QUEUE), budget, 'queue'),
    withBudget(liveWorkers(engine), budget, 'workers'),
  ]);
  const database = db.ok
    ? { ok: true, latencyMs: Math.round((performance.now() - t0) * 10) / 10 }
    : { ok: false, latencyMs: -1, error: db.error };
  const workers = live.ok ? live.value : [];
  const served = new Set(workers.flatMap((w) => w.jobTypes));
  return {
    database,
    queue: queue.ok ? { ok: !!queue.value } : { ok: false, error: queue.error },
    workers: workers.length,
    liveWorkers: workers,
    unservedTypes: live.ok ? [...engine.plugins.keys()].filter((t) => !served.has(t)) : [],
  };
}

/**
 * Readiness: whether this process can serve requests now (PostgreSQL answers within the budget).
 * False during a database outage, true again once the pool reconnects.
 */
export async function ready(
  engine: Pick<Engine, 'pool'>,
  budgetMs = 1_000,
): Promise<{ ready: boolean; error?: string }> {
  const db = await withBudget(engine.pool.query('select 1'), budgetMs, 'database');
  return db.ok ? { ready: true } : { ready: false, error: db.error };
}
