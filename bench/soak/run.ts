/**
 * bench/soak: many jobs under faults, on a PostgreSQL cluster of its own.
 *
 *   pnpm --filter @coremachine/bench soak [--minutes 10] [--jobs 1000] [--workers 3]
 *
 * Submits `--jobs` greeting/reply jobs (1-20 tasks per stage, failure injection 0-30 %) over the
 * first 60 % of the time, while a chaos loop SIGKILLs workers (a new one replaces each) and
 * SIGSTOPs others past their lease (zombies, then SIGCONT); PostgreSQL is restarted once. Then it
 * waits for every job to settle (or the time to run out) and prints: jobs settled, tasks settled
 * twice (stage counters beyond the tasks that settled: must be 0), jobs stuck (not settled at the
 * end: must be 0), handler runs that did their work twice (zombies finishing late; their settle
 * is refused), and p50/p99 submit→settled.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { CoreMachine, createLogger, TERMINAL_JOB_STATUSES } from '@coremachine/core-machine';
import { startPostgres, uniqueSchema } from '@coremachine/test-kit';
import { ensureEffects, EFFECTS, soakJob } from './jobs.ts';

const flag = (name: string) => {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? Number(process.argv[i + 1]) : undefined;
};
const MINUTES = flag('minutes') ?? 10;
const JOBS = flag('jobs') ?? 1000;
const WORKERS = flag('workers') ?? 3;
const deadline = Date.now() + MINUTES * 60_000;
const submitUntil = Date.now() + MINUTES * 60_000 * 0.6;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const WORKER = fileURLToPath(new URL('./worker.ts', import.meta.url));

const pg = await startPostgres();
const schema = uniqueSchema('soak');
const api = await CoreMachine.start({
  connectionString: pg.url,
  plugins: [soakJob],
  config: { schema },
  log: createLogger('silent'),
});
await ensureEffects(api.pool);

const stats = { kills: 0, stops: 0, pgRestarts: 0, submitErrors: 0, workerCrashes: 0 };
const workers = new Set<ChildProcess>();
const spawnWorker = () =>
  new Promise<void>((resolve) => {
    const child = spawn(process.execPath, ['--import', 'tsx', WORKER, schema], {
      env: { ...process.env, DATABASE_URL: pg.url },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    workers.add(child);
    let err = '';
    child.stderr.on('data', (d: Buffer) => (err += d));
    child.stdout.on('data', (d: Buffer) => {
      if (String(d).includes('ready')) resolve();
    });
    child.on('exit', (code, signal) => {
      workers.delete(child);
      if (signal !== 'SIGKILL' && signal !== 'SIGTERM' && code !== 0) {
        stats.workerCrashes++;
        process.stderr.write(`worker ${child.pid} exited ${code}: ${err.slice(-2000)}\n`);
      }
      resolve();
    });
  });
await Promise.all(Array.from({ length: WORKERS }, spawnWorker));
console.log(
  `bench/soak: ${JOBS} jobs, ${WORKERS} worker processes, ${MINUTES} min at most, PostgreSQL of its own on port ${pg.port}`,
);

// Chaos: every 3-8 s, SIGKILL a worker (replaced) or SIGSTOP one past its lease (5 s), then SIGCONT.
let chaos = true;
const chaosLoop = (async () => {
  const restartAt = Date.now() + (submitUntil - Date.now()) * 0.5;
  let restarted = false;
  while (chaos) {
    await sleep(3_000 + Math.random() * 5_000);
    if (!chaos) break;
    if (!restarted && Date.now() > restartAt) {
      restarted = true;
      stats.pgRestarts++;
      await pg.restart({ downMs: 2_000 });
      continue;
    }
    const list = [...workers];
    const victim = list[Math.floor(Math.random() * list.length)];
    if (!victim?.pid) continue;
    if (Math.random() < 0.5) {
      stats.kills++;
      victim.kill('SIGKILL');
      await spawnWorker();
    } else {
      stats.stops++;
      victim.kill('SIGSTOP');
      await sleep(7_000);
      victim.kill('SIGCONT');
    }
  }
})();

const submitted: string[] = [];
for (let i = 0; i < JOBS && Date.now() < deadline; i++) {
  const pace = (submitUntil - Date.now()) / Math.max(1, JOBS - i);
  try {
    const r = await api.submit('soak_hello', {
      n: 1 + Math.floor(Math.random() * 20),
      failure_rate: Math.round(Math.random() * 30) / 100,
      sleep_ms: Math.floor(Math.random() * 200),
      run: `${schema}-${i}`,
    });
    submitted.push(r.jobId);
  } catch {
    stats.submitErrors++;
    i--; // submit again (idempotent: same parameters, same job)
    await sleep(200);
    continue;
  }
  if (pace > 0) await sleep(pace);
}
console.log(`submitted ${submitted.length} jobs; waiting for them to settle`);
const terminal = `(${TERMINAL_JOB_STATUSES.map((s) => `'${s}'`).join(',')})`;
for (;;) {
  const {
    rows: [c],
  } = await api.pool
    .query(`SELECT count(*) FILTER (WHERE status IN ${terminal})::int AS settled FROM "${schema}".jobs`)
    .catch(() => ({ rows: [{ settled: -1 }] }));
  if (c.settled >= submitted.length) break;
  if (Date.now() > deadline) break;
  if (Date.now() > submitUntil + 10_000) chaos = false; // let the tail settle without faults
  await sleep(500);
}
chaos = false;
await chaosLoop;

const q = async (sql: string) => (await api.pool.query(sql)).rows[0];
const s = `"${schema}"`;
const jobs = await q(
  `SELECT count(*) FILTER (WHERE status IN ${terminal})::int AS settled, count(*) FILTER (WHERE status NOT IN ${terminal})::int AS stuck,
          count(*) FILTER (WHERE status = 'completed')::int AS completed, count(*) FILTER (WHERE status = 'failed')::int AS failed,
          percentile_cont(0.5) WITHIN GROUP (ORDER BY extract(epoch FROM completed_at - created_at)) FILTER (WHERE status IN ${terminal}) AS p50,
          percentile_cont(0.99) WITHIN GROUP (ORDER BY extract(epoch FROM completed_at - created_at)) FILTER (WHERE status IN ${terminal}) AS p99
   FROM ${s}.jobs`,
);
const twice = await q(
  `SELECT (SELECT COALESCE(sum(completed + failed), 0) FROM ${s}.stages)::int
        - (SELECT count(*) FROM ${s}.tasks WHERE status IN ('completed', 'failed'))::int AS n`,
);
const tasks = await q(`SELECT count(*)::int AS n FROM ${s}.tasks WHERE status IN ('completed', 'failed')`);
const doubled = await q(
  `SELECT count(*)::int AS n FROM (SELECT 1 FROM ${EFFECTS} GROUP BY job_id, stage, task_key HAVING count(*) > 1) x`,
);
console.log(
  `jobs settled: ${jobs.settled} of ${submitted.length} (${jobs.completed} completed, ${jobs.failed} failed)`,
);
console.log(`tasks settled: ${tasks.n}; tasks settled twice: ${twice.n} (must be 0)`);
console.log(`jobs stuck: ${jobs.stuck} (must be 0)`);
console.log(`handler runs that did their work twice (zombies finishing after their lease was taken): ${doubled.n}`);
console.log(`submit→settled: p50 ${Number(jobs.p50).toFixed(2)} s, p99 ${Number(jobs.p99).toFixed(2)} s`);
console.log(
  `faults: ${stats.kills} SIGKILL, ${stats.stops} SIGSTOP past the lease, ${stats.pgRestarts} PostgreSQL restart; ${stats.submitErrors} submits refused during the outage (resubmitted); worker crashes: ${stats.workerCrashes}`,
);
for (const w of workers) w.kill('SIGKILL');
await api.close();
await pg.destroy();
process.exit(twice.n === 0 && jobs.stuck === 0 && stats.workerCrashes === 0 ? 0 : 1);
