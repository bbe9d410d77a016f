/**
 * Submits, grouped: the submits that arrive while one group is being written go in the next
 * group, one transaction for all (jobs, `job_submitted` events, plan messages: a few
 * statements whatever the group's size). Alone, a submit is a group of one; under load, many
 * concurrent submits cost about as much as one. Idempotence is the same as one by one: the
 * same job id again (in the group or already stored) returns the stored job, `idempotent: true`.
 */
import type { PgBoss } from 'pg-boss';
import { withTransaction, type Pool, type PoolClient } from './db.ts';
import type { AnyJobDefinition, JobStatus } from './define-job.ts';
import { pluginOf, zodIssues, type Engine } from './engine.ts';
import { CoreMachineError } from './errors.ts';
import { defaultJobId } from './job-id.ts';
import { addEvents, sendControls, type Tables } from './ledger.ts';
import { metrics } from './metrics.ts';
import type { SubmitResult } from './views.ts';

export interface SubmitRequest {
  jobId: string;
  type: string;
  version: string;
  params: Record<string, unknown>;
  totalStages: number;
}

interface Pending {
  req: SubmitRequest;
  resolve: (r: SubmitResult) => void;
  reject: (e: unknown) => void;
}

const GROUP = 500;

export class SubmitGroups {
  private pending: Pending[] = [];
  private flushing: Promise<void> | null = null;
  private readonly pool: Pool;
  private readonly boss: PgBoss;
  private readonly t: Tables;

  constructor(deps: { pool: Pool; boss: PgBoss; t: Tables }) {
    this.pool = deps.pool;
    this.boss = deps.boss;
    this.t = deps.t;
  }

  submit(req: SubmitRequest): Promise<SubmitResult> {
    return new Promise((resolve, reject) => {
      this.pending.push({ req, resolve, reject });
      this.flushing ??= this.flushLoop();
    });
  }

  private async flushLoop(): Promise<void> {
    await new Promise((r) => setImmediate(r));
    try {
      while (this.pending.length) {
        const group = this.pending.splice(0, GROUP);
        try {
          const results = await withTransaction(this.pool, (client) =>
            this.write(
              client,
              group.map((p) => p.req),
            ),
          );
          group.forEach((p, i) => p.resolve(results[i]!));
        } catch (err) {
          if (group.length === 1) {
            group[0]!.reject(err);
            continue;
          }
          // One bad submit must not fail the others: each again on its own.
          for (const p of group) {
            try {
              const [result] = await withTransaction(this.pool, (client) => this.write(client, [p.req]));
              p.resolve(result!);
            } catch (e) {
              p.reject(e);
            }
          }
        }
      }
    } finally {
      this.flushing = null;
    }
  }

  private async write(client: PoolClient, reqs: SubmitRequest[]): Promise<SubmitResult[]> {
    const { t } = this;
    const first = new Map<string, SubmitRequest>();
    for (const r of reqs) if (!first.has(r.jobId)) first.set(r.jobId, r);
    const unique = [...first.values()];
    const { rows } = await client.query(
      `INSERT INTO ${t.jobs} (id, type, plugin_version, parameters, total_stages)
       SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::jsonb[], $5::int[])
       ON CONFLICT (id) DO NOTHING RETURNING id`,
      [
        unique.map((r) => r.jobId),
        unique.map((r) => r.type),
        unique.map((r) => r.version),
        unique.map((r) => JSON.stringify(r.params)),
        unique.map((r) => r.totalStages),
      ],
    );
    const inserted = new Set(rows.map((r) => r.id as string));
    const created = unique.filter((r) => inserted.has(r.jobId));
    await addEvents(
      client,
      t,
      created.map((r) => ({ jobId: r.jobId, kind: 'job_submitted', data: { type: r.type } })),
    );
    await sendControls(
      this.boss,
      client,
      created.map((r) => ({ jobId: r.jobId, action: 'plan', stage: 1 })),
    );
    for (const r of created) metrics.jobsSubmitted.inc({ type: r.type });
    const existingIds = unique.filter((r) => !inserted.has(r.jobId)).map((r) => r.jobId);
    const existing = new Map<string, { status: JobStatus; parameters: Record<string, unknown> }>();
    if (existingIds.length) {
      const { rows: found } = await client.query(`SELECT id, status, parameters FROM ${t.jobs} WHERE id = ANY($1)`, [
        existingIds,
      ]);
      for (const f of found) existing.set(f.id, { status: f.status, parameters: f.parameters });
    }
    const answered = new Set<string>();
    return reqs.map((r) => {
      const fresh = inserted.has(r.jobId) && !answered.has(r.jobId);
      answered.add(r.jobId);
      if (fresh) return { jobId: r.jobId, type: r.type, status: 'queued', idempotent: false, parameters: r.params };
      const stored = existing.get(r.jobId);
      return {
        jobId: r.jobId,
        type: r.type,
        status: stored?.status ?? 'queued',
        idempotent: true,
        parameters: stored?.parameters ?? first.get(r.jobId)!.params,
      };
    });
  }
}

/** A submit's job type, validated parameters (defaults applied) and job id, nothing written. */
export interface PreparedSubmit {
  jobId: string;
  params: Record<string, unknown>;
  plugin: AnyJobDefinition;
}

/** Validates parameters (defaults applied) and computes the job id, without writing anything. */
export function prepareSubmit(engine: Pick<Engine, 'plugins'>, type: string, rawParams: unknown): PreparedSubmit {
  const plugin = pluginOf(engine, type);
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
  const jobId = plugin.generateJobId ? plugin.generateJobId(params) : defaultJobId(type, params, plugin.idExcludeKeys);
  return { jobId, params, plugin };
}
