/**
 * The retention purge (`purgeJobs`: batches of 100 jobs, each its own transaction) against the
 * baseline of one `DELETE FROM jobs ... ` whose foreign keys cascade to tasks, stages and events,
 * on the same ledger rows: total time, the longest transaction (how long the purged rows stay
 * locked and the WAL of one commit) and their ratios.
 *
 *   node --import tsx retention/run.ts [--jobs 2000] [--tasks 50] [--events 6]
 */
import { parseArgs } from 'node:util';
import { CoreMachine, createLogger, defineJob, defineStage, purgeJobs } from '@coremachine/core-machine';
import { DATABASE_URL, dropSchemas, uniqueSchema } from '@coremachine/test-kit';
import { z } from 'zod';

const { values } = parseArgs({
  options: { jobs: { type: 'string' }, tasks: { type: 'string' }, events: { type: 'string' } },
});
const JOBS = Number(values.jobs ?? 2000);
const TASKS = Number(values.tasks ?? 50);
const EVENTS = Number(values.events ?? 6);

const noop = defineStage<Record<string, never>>()({
  name: 'noop',
  input: z.object({}),
  output: z.object({}),
  plan: () => [],
  handler: () => ({}),
});
const plugin = defineJob({
  type: 'bench_noop',
  version: '1.0.0',
  description: 'rows only',
  parameters: z.object({}),
  stages: [noop],
  result: z.object({}),
  aggregate: () => ({}),
});

const schema = uniqueSchema('cmbret');
const machine = await CoreMachine.start({
  connectionString: DATABASE_URL,
  plugins: [plugin],
  config: { schema },
  log: createLogger('error'),
});
const q = (sql: string) => machine.pool.query(sql);
const s = `"${schema}"`;

/** JOBS settled jobs, settled ten days ago, each with TASKS tasks, one stage and EVENTS events. */
async function fill(): Promise<void> {
  await q(`INSERT INTO ${s}.jobs (id, type, plugin_version, parameters, status, total_stages, current_stage, created_at, completed_at)
           SELECT encode(sha256(('j' || i)::bytea), 'hex'), 'bench_noop', '1.0.0', '{}', 'completed', 1, 1,
                  now() - interval '11 days', now() - interval '10 days'
           FROM generate_series(1, ${JOBS}) i`);
  await q(`INSERT INTO ${s}.stages (job_id, stage_index, name, status, total, completed)
           SELECT id, 1, 'noop', 'completed', ${TASKS}, ${TASKS} FROM ${s}.jobs`);
  await q(`INSERT INTO ${s}.tasks (id, job_id, stage_index, key, input, status, attempts, max_attempts, lease_seconds, output)
           SELECT j.id || ':' || k, j.id, 1, k::text, '{"chunk": 1}', 'completed', 1, 4, 60, '{"rows": 1000, "bytes": 123456}'
           FROM ${s}.jobs j, generate_series(1, ${TASKS}) k`);
  await q(`INSERT INTO ${s}.job_events (job_id, kind, message)
           SELECT j.id, 'bench', 'event ' || e FROM ${s}.jobs j, generate_series(1, ${EVENTS}) e`);
  await q(`VACUUM ANALYZE ${s}.jobs, ${s}.tasks, ${s}.job_events, ${s}.stages`);
}

const counts = async () =>
  (
    await q(
      `SELECT (SELECT count(*) FROM ${s}.jobs)::int AS jobs, (SELECT count(*) FROM ${s}.tasks)::int AS tasks, (SELECT count(*) FROM ${s}.job_events)::int AS events`,
    )
  ).rows[0] as { jobs: number; tasks: number; events: number };

try {
  await fill();
  console.log(`ledger: ${JSON.stringify(await counts())}`);
  const t0 = performance.now();
  const purged = await purgeJobs(machine, { olderThanSeconds: 7 * 86_400 });
  const purgeMs = performance.now() - t0;
  const purgeLongest = purgeMs / purged.batches; // batches are alike: an average is the longest within noise
  if ((await counts()).jobs !== 0) throw new Error('purge left jobs behind');

  await fill();
  const t1 = performance.now();
  await q(`DELETE FROM ${s}.jobs WHERE status = 'completed' AND completed_at < now() - interval '7 days'`);
  const baselineMs = performance.now() - t1;
  if ((await counts()).tasks !== 0) throw new Error('the cascade left tasks behind');

  console.log(
    `purgeJobs: ${purged.jobs} jobs, ${purged.tasks} tasks, ${purged.events} events in ${purged.batches} batches: ` +
      `${(purgeMs / 1000).toFixed(2)} s, ~${purgeLongest.toFixed(0)} ms per transaction`,
  );
  console.log(`one cascading DELETE: ${(baselineMs / 1000).toFixed(2)} s in one transaction`);
  console.log(
    `ratio (purgeJobs / DELETE): total ${(purgeMs / baselineMs).toFixed(2)}x, longest transaction ${(purgeLongest / baselineMs).toFixed(3)}x`,
  );
} finally {
  await machine.close();
  await dropSchemas(schema);
}
