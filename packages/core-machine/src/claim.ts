/**
 * Claiming tasks: a fetched message names task ids; only queued tasks of running jobs are taken
 * (the row lock makes concurrent claims of one task exclusive, and the fresh lease token fences
 * out older runs).
 *
 * Cluster-wide caps (`concurrencyLimits`, per job type or per job type and stage): the claim
 * takes a transaction-scoped advisory lock per capped scope, counts the scope's running tasks
 * in the ledger and claims no more than the cap leaves free. Every claimer of a scope queues
 * on the same lock and counts what the previous one committed, so the cap is never exceeded
 * however many workers claim at once; a slot frees when its task leaves `processing` (settled,
 * released or re-queued by the lease sweep), so no slot can leak. The tasks left over stay
 * queued and get a new message a moment later.
 */
import type { PgBoss } from 'pg-boss';
import { withTransaction, type Pool, type Queryable } from './db.ts';
import type { AnyJobDefinition } from './define-job.ts';
import { sendTaskMessages, taskMessages, type Tables } from './ledger.ts';

export interface ClaimedRow {
  id: string;
  job_id: string;
  stage_index: number;
  key: string;
  input: unknown;
  attempts: number;
  max_attempts: number;
  lease_token: string;
  lease_seconds: number;
  type: string;
  parameters: Record<string, unknown>;
}

/** How soon tasks held back by a cap get their new message. */
export const CAP_RETRY_MS = 500;

/** The caps that apply to a job type: the type's own, and per stage index. */
export interface TypeCaps {
  type: number | null;
  stages: Map<number, number>;
}

export function capsOf(plugin: AnyJobDefinition, limits: Record<string, number>): TypeCaps | null {
  const type = limits[plugin.type] ?? null;
  const stages = new Map<number, number>();
  plugin.stages.forEach((s, i) => {
    const cap = limits[`${plugin.type}.${s.name}`];
    if (cap !== undefined) stages.set(i + 1, cap);
  });
  return type === null && !stages.size ? null : { type, stages };
}

/** Keys of `limits` that name no loaded job type or stage (a typo would otherwise cap nothing). */
export function unknownLimitKeys(plugins: Iterable<AnyJobDefinition>, limits: Record<string, number>): string[] {
  const known = new Set<string>();
  for (const p of plugins) {
    known.add(p.type);
    for (const s of p.stages) known.add(`${p.type}.${s.name}`);
  }
  return Object.keys(limits).filter((k) => !known.has(k));
}

async function claim(db: Queryable, t: Tables, ids: string[], workerId: string): Promise<ClaimedRow[]> {
  if (!ids.length) return [];
  const { rows } = await db.query<ClaimedRow>(
    `UPDATE ${t.tasks} tk SET status = 'processing', attempts = tk.attempts + 1, lease_token = gen_random_uuid(),
            heartbeat_at = now(), started_at = COALESCE(tk.started_at, now()), progress = NULL, progress_note = NULL,
            worker_id = $2
     FROM ${t.jobs} j
     WHERE tk.id = ANY($1) AND tk.status = 'queued' AND j.id = tk.job_id AND j.status = 'processing'
     RETURNING tk.id, tk.job_id, tk.stage_index, tk.key, tk.input, tk.attempts, tk.max_attempts, tk.lease_token,
               tk.lease_seconds, j.type, j.parameters`,
    [ids, workerId],
  );
  return rows;
}

export interface ClaimDeps {
  pool: Pool;
  boss: PgBoss;
  t: Tables;
}

/** Claims the queued tasks among `ids` for `workerId`, within the caps of `plugin`'s type. */
export async function claimTasks(
  deps: ClaimDeps,
  plugin: AnyJobDefinition,
  caps: TypeCaps | null,
  ids: string[],
  workerId: string,
): Promise<ClaimedRow[]> {
  if (!caps) return claim(deps.pool, deps.t, ids, workerId);
  const { t } = deps;
  return withTransaction(deps.pool, async (client) => {
    const { rows: candidates } = await client.query<{ id: string; job_id: string; stage_index: number }>(
      `SELECT tk.id, tk.job_id, tk.stage_index FROM ${t.tasks} tk JOIN ${t.jobs} j ON j.id = tk.job_id
       WHERE tk.id = ANY($1) AND tk.status = 'queued' AND j.status = 'processing' ORDER BY tk.id`,
      [ids],
    );
    if (!candidates.length) return [];
    const scopes = new Set<string>();
    if (caps.type !== null) scopes.add(plugin.type);
    for (const c of candidates) if (caps.stages.has(c.stage_index)) scopes.add(`${plugin.type}#${c.stage_index}`);
    // One lock per scope, in a fixed order (no deadlock between claimers of several scopes).
    await client.query(
      `SELECT pg_advisory_xact_lock(hashtext($1), hashtext(k)) FROM (SELECT k FROM unnest($2::text[]) AS k ORDER BY k) s`,
      [`${t.schema}:cap`, [...scopes].sort()],
    );
    const { rows: running } = await client.query<{ stage_index: number; n: number }>(
      `SELECT tk.stage_index, count(*)::int AS n FROM ${t.tasks} tk JOIN ${t.jobs} j ON j.id = tk.job_id
       WHERE tk.status = 'processing' AND j.type = $1 GROUP BY tk.stage_index`,
      [plugin.type],
    );
    let typeFree = caps.type === null ? Infinity : caps.type - running.reduce((n, r) => n + r.n, 0);
    const stageFree = new Map<number, number>();
    for (const [stage, cap] of caps.stages)
      stageFree.set(stage, cap - (running.find((r) => r.stage_index === stage)?.n ?? 0));
    const take: string[] = [];
    const left: typeof candidates = [];
    for (const c of candidates) {
      const free = stageFree.get(c.stage_index) ?? Infinity;
      if (typeFree > 0 && free > 0) {
        take.push(c.id);
        typeFree--;
        if (stageFree.has(c.stage_index)) stageFree.set(c.stage_index, free - 1);
      } else left.push(c);
    }
    const claimed = await claim(client, t, take, workerId);
    if (left.length) {
      // Held back by the cap: still queued, a new message shortly (grouped per job as planned).
      const byJob = new Map<string, string[]>();
      for (const c of left) byJob.set(c.job_id, [...(byJob.get(c.job_id) ?? []), c.id]);
      const startAfter = new Date(Date.now() + CAP_RETRY_MS);
      const messages = [...byJob.values()].flatMap((jobIds) =>
        taskMessages(jobIds, plugin.queue?.tasksPerMessage ?? 1).map((m) => ({ ...m, startAfter })),
      );
      await sendTaskMessages(deps.boss, client, plugin.type, messages);
    }
    return claimed;
  });
}
