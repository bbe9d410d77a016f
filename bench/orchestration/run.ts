/**
 * bench/orchestration: N no-op tasks in one stage, submit → completed, next to raw pg-boss
 * moving N jobs through `insert` + `work` on the same database in the same run.
 *
 *   pnpm --filter @coremachine/bench orchestration [--n 10000] [--repeat 3]
 *   pnpm --filter @coremachine/bench orchestration --jobs 1000 [--repeat 3]
 *
 * Prints both times and the ratio (target: CoreMachine within 2× of raw pg-boss), then the
 * time per task at N/4, N/2 and N to show settling costs O(N) in total.
 *
 * With `--jobs J`: J jobs of 10 no-op tasks each, all submitted at once, submit → all done, next
 * to raw pg-boss moving the same number of messages CoreMachine sends for them (per job: plan,
 * aggregate and its task messages). This measures the control steps (plan, aggregate).
 */
import { CoreMachine } from '@coremachine/core-machine';
import { DATABASE_URL, dropSchemas, uniqueSchema } from '@coremachine/test-kit';
import { noopJob } from './noop-job.ts';
import { PgBoss } from 'pg-boss';

const flag = (name: string) => {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? Number(process.argv[i + 1]) : undefined;
};
const N = flag('n') ?? 10_000;
/** --jobs J: many small jobs instead of one big one. */
const JOBS = flag('jobs');
const TASKS_PER_JOB = 10;
/** Rounds, alternating the two sides; medians are compared (the machine is shared). */
const REPEAT = flag('repeat') ?? 3;
const BATCH = 100;
const LOOPS = 2;

// A message carries task ids: one fetch (2 messages) takes BATCH tasks, as one raw fetch below
// takes BATCH jobs.
const noop = noopJob('bench_noop', 'N tasks that do nothing', {
  batchSize: BATCH,
  concurrency: LOOPS,
  tasksPerMessage: BATCH / 2,
});

// One message per job's stage: a fetch takes BATCH messages (BATCH jobs' tasks), as one raw
// fetch below takes BATCH messages.
const smallNoop = noopJob('bench_small', 'a few tasks that do nothing', {
  batchSize: BATCH * TASKS_PER_JOB,
  concurrency: LOOPS,
  tasksPerMessage: TASKS_PER_JOB,
});

async function coreMachine(n: number): Promise<number> {
  const schema = uniqueSchema('bench');
  const machine = await CoreMachine.start({
    connectionString: DATABASE_URL,
    plugins: [noop],
    config: { schema, pollingIntervalSeconds: 0.5, poolMax: 10 },
    log: { info() {}, warn() {}, error: (m, f) => console.error(m, f) },
  });
  await machine.startWorker();
  const t0 = performance.now();
  const { jobId } = await machine.submit('bench_noop', { n, run: schema });
  for (;;) {
    const {
      rows: [j],
    } = await machine.pool.query(`SELECT status FROM "${schema}".jobs WHERE id = $1`, [jobId]);
    if (j.status === 'completed') break;
    if (j.status === 'failed') throw new Error('bench job failed');
    await new Promise((r) => setTimeout(r, 20));
  }
  const ms = performance.now() - t0;
  await machine.close();
  await dropSchemas(schema);
  return ms;
}

/** J jobs of TASKS_PER_JOB tasks, submitted at once; ms from the first submit to the last done. */
async function coreMachineJobs(jobs: number): Promise<{ ms: number; messages: number }> {
  const schema = uniqueSchema('benchj');
  const machine = await CoreMachine.start({
    connectionString: DATABASE_URL,
    plugins: [smallNoop],
    config: { schema, pollingIntervalSeconds: 0.5, poolMax: 10 },
    log: { info() {}, warn() {}, error: (m, f) => console.error(m, f) },
  });
  await machine.startWorker();
  const t0 = performance.now();
  for (let i = 0; i < jobs; i += 50) {
    await Promise.all(
      Array.from({ length: Math.min(50, jobs - i) }, (_, k) =>
        machine.submit('bench_small', { n: TASKS_PER_JOB, run: `${schema}-${i + k}` }),
      ),
    );
  }
  const submitted = performance.now() - t0;
  for (;;) {
    const {
      rows: [c],
    } = await machine.pool.query(
      `SELECT count(*) FILTER (WHERE status = 'completed')::int AS done, count(*) FILTER (WHERE status = 'failed')::int AS failed FROM "${schema}".jobs`,
    );
    if (c.failed) throw new Error('bench job failed');
    if (c.done >= jobs) break;
    await new Promise((r) => setTimeout(r, 20));
  }
  const ms = performance.now() - t0;
  const {
    rows: [m],
  } = await machine.pool.query(`SELECT count(*)::int AS n FROM "${schema}_queue".job`);
  await machine.close();
  await dropSchemas(schema);
  if (jobs > 20) console.log(`  (${jobs} submits took ${fmt(submitted)} of ${fmt(ms)})`);
  return { ms, messages: m.n };
}

async function rawPgBoss(n: number): Promise<number> {
  const schema = uniqueSchema('benchraw');
  const boss = new PgBoss({
    connectionString: DATABASE_URL,
    schema,
    useListenNotify: true,
    supervise: false,
    schedule: false,
  });
  boss.on('error', (e) => console.error(e));
  await boss.start();
  await boss.createQueue('noop', { notify: true });
  let done = 0;
  let finish!: () => void;
  const finished = new Promise<void>((r) => (finish = r));
  const t0 = performance.now();
  for (let i = 0; i < n; i += 5_000) {
    await boss.insert(
      'noop',
      Array.from({ length: Math.min(5_000, n - i) }, (_, k) => ({ data: { i: i + k } })),
    );
  }
  for (let l = 0; l < LOOPS; l++) {
    await boss.work(
      'noop',
      {
        batchSize: BATCH,
        pollingIntervalSeconds: 0.5,
        notifyPollingIntervalSeconds: 0.5,
        burstWhenBatchFull: true,
      },
      async (jobs) => {
        done += jobs.length;
        if (done >= n) finish();
      },
    );
  }
  await finished;
  const ms = performance.now() - t0;
  await boss.stop({ graceful: false, close: true });
  await dropSchemas(schema.replace(/_queue$/, ''));
  const { default: pg } = await import('pg');
  const pool = new pg.Pool({ connectionString: DATABASE_URL, max: 1 });
  await pool.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
  await pool.end();
  return ms;
}

const fmt = (ms: number) => `${(ms / 1000).toFixed(2)} s`;
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const list = (xs: number[]) => `[${xs.map((x) => (x / 1000).toFixed(2)).join(', ')}]`;
const load = async () =>
  (await import('node:os'))
    .loadavg()
    .map((l) => l.toFixed(1))
    .join(' ');

if (JOBS) {
  console.log(
    `bench/orchestration --jobs: ${JOBS} jobs of ${TASKS_PER_JOB} no-op tasks, one worker process, PostgreSQL at ${DATABASE_URL.replace(/\/\/.*@/, '//')}`,
  );
  const warm = await coreMachineJobs(20); // warm-up; also counts the messages a job sends
  const perJob = warm.messages / 20;
  const messages = Math.round(perJob * JOBS);
  // A second baseline: one message per task plus plan and aggregate, as a queue without task
  // batching would move them (CoreMachine packs a stage's tasks into few messages).
  const unpacked = JOBS * (TASKS_PER_JOB + 2);
  const raws: number[] = [];
  const rawsUnpacked: number[] = [];
  const ourRuns: number[] = [];
  for (let r = 0; r < REPEAT; r++) {
    if (r % 2 === 0) {
      raws.push(await rawPgBoss(messages));
      rawsUnpacked.push(await rawPgBoss(unpacked));
      ourRuns.push((await coreMachineJobs(JOBS)).ms);
    } else {
      ourRuns.push((await coreMachineJobs(JOBS)).ms);
      rawsUnpacked.push(await rawPgBoss(unpacked));
      raws.push(await rawPgBoss(messages));
    }
  }
  const raw = median(raws);
  const rawUnpacked = median(rawsUnpacked);
  const ours = median(ourRuns);
  console.log(`raw pg-boss, ${messages} messages (${perJob} per job): median ${fmt(raw)} of ${list(raws)}`);
  console.log(
    `raw pg-boss, ${unpacked} messages (${TASKS_PER_JOB + 2} per job: a message per task, plan, aggregate): median ${fmt(rawUnpacked)} of ${list(rawsUnpacked)}`,
  );
  console.log(
    `CoreMachine ${JOBS} jobs submit→all done      : median ${fmt(ours)} of ${list(ourRuns)}  (${Math.round(JOBS / (ours / 1000))} jobs/s, ${Math.round((2 * JOBS) / (ours / 1000))} control steps/s)`,
  );
  console.log(
    `ratio CoreMachine / raw pg-boss (--jobs): ${(ours / raw).toFixed(2)}× (target ≤ 2×); against a message per task: ${(ours / rawUnpacked).toFixed(2)}×; load average ${await load()}`,
  );
  process.exit(0);
}

console.log(
  `bench/orchestration: ${N} no-op tasks, batch ${BATCH}, ${LOOPS} fetch loops, one worker process, PostgreSQL at ${DATABASE_URL.replace(/\/\/.*@/, '//')}`,
);
await coreMachine(200); // warm-up (module load, plan caches)
const raws: number[] = [];
const ourRuns: number[] = [];
for (let r = 0; r < REPEAT; r++) {
  if (r % 2 === 0) {
    raws.push(await rawPgBoss(N));
    ourRuns.push(await coreMachine(N));
  } else {
    ourRuns.push(await coreMachine(N));
    raws.push(await rawPgBoss(N));
  }
}
const raw = median(raws);
const ours = median(ourRuns);
console.log(`raw pg-boss insert+work : median ${fmt(raw)} of ${list(raws)}  (${Math.round(N / (raw / 1000))} jobs/s)`);
console.log(
  `CoreMachine submit→done : median ${fmt(ours)} of ${list(ourRuns)}  (${Math.round(N / (ours / 1000))} tasks/s, ledger + exactly-once settle + aggregate)`,
);
console.log(
  `ratio CoreMachine / raw pg-boss: ${(ours / raw).toFixed(2)}× (target ≤ 1.6×, goal 1.2×); load average ${await load()}`,
);
console.log('scaling (settling is O(N) in total: time per task should stay flat):');
for (const n of [N / 4, N / 2, N].map(Math.round)) {
  const ms = n === N ? ours : await coreMachine(n);
  console.log(`  N=${String(n).padStart(6)}: ${fmt(ms)}  ${((ms / n) * 1000).toFixed(0)} µs/task`);
}
