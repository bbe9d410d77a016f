/**
 * bench/orchestration: N no-op tasks in one stage, submit → completed, next to raw pg-boss
 * moving N jobs through `insert` + `work` on the same database in the same run.
 *
 *   pnpm --filter @coremachine/bench orchestration [--n 10000] [--repeat 3]
 *
 * Prints both times and the ratio (target: CoreMachine within 2× of raw pg-boss), then the
 * time per task at N/4, N/2 and N to show settling costs O(N) in total.
 */
import { CoreMachine, defineJob, defineStage } from '@coremachine/core-machine';
import { DATABASE_URL, dropSchemas, uniqueSchema } from '@coremachine/test-kit';
import { PgBoss } from 'pg-boss';
import { z } from 'zod';

const flag = (name: string) => {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? Number(process.argv[i + 1]) : undefined;
};
const N = flag('n') ?? 10_000;
/** Rounds, alternating the two sides; medians are compared (the machine is shared). */
const REPEAT = flag('repeat') ?? 3;
const BATCH = 100;
const LOOPS = 2;

const noop = defineJob({
  type: 'bench_noop',
  version: '1.0.0',
  description: 'N tasks that do nothing',
  parameters: z.object({ n: z.number().int(), run: z.string() }),
  stages: [
    defineStage<{ n: number }>()({
      name: 'noop',
      input: z.object({}),
      output: z.object({}),
      plan: ({ params }) => Array.from({ length: params.n }, (_, i) => ({ key: String(i), input: {} })),
      handler: () => ({}),
    }),
  ],
  result: z.object({ tasks: z.number() }),
  aggregate: (ctx) => ({ tasks: ctx.stages[0]!.completed }),
  // A message carries task ids: one fetch (2 messages) takes BATCH tasks, as one raw fetch
  // below takes BATCH jobs.
  queue: { batchSize: BATCH, concurrency: LOOPS, tasksPerMessage: BATCH / 2 },
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
  await boss.createQueue('noop', { notify: true } as never);
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
      } as never,
      (async (jobs: unknown[]) => {
        done += jobs.length;
        if (done >= n) finish();
      }) as never,
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
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const raw = median(raws);
const ours = median(ourRuns);
const list = (xs: number[]) => `[${xs.map((x) => (x / 1000).toFixed(2)).join(', ')}]`;
console.log(`raw pg-boss insert+work : median ${fmt(raw)} of ${list(raws)}  (${Math.round(N / (raw / 1000))} jobs/s)`);
console.log(
  `CoreMachine submit→done : median ${fmt(ours)} of ${list(ourRuns)}  (${Math.round(N / (ours / 1000))} tasks/s, ledger + exactly-once settle + aggregate)`,
);
console.log(
  `ratio CoreMachine / raw pg-boss: ${(ours / raw).toFixed(2)}× (target ≤ 2×); load average ${(await import('node:os'))
    .loadavg()
    .map((l) => l.toFixed(1))
    .join(' ')}`,
);
console.log('scaling (settling is O(N) in total: time per task should stay flat):');
for (const n of [N / 4, N / 2, N].map(Math.round)) {
  const ms = n === N ? ours : await coreMachine(n);
  console.log(`  N=${String(n).padStart(6)}: ${fmt(ms)}  ${((ms / n) * 1000).toFixed(0)} µs/task`);
}
