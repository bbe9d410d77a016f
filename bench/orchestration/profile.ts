/**
 * bench/orchestration/profile: database round trips per small job. Runs J jobs of 10 no-op
 * tasks (as `run.ts --jobs`) with every pg client's `query` counted, and prints statements per
 * job, grouped by their first words, largest first.
 *
 *   node --import tsx orchestration/profile.ts [--jobs 200]
 */
import { CoreMachine } from '@coremachine/core-machine';
import { DATABASE_URL, dropSchemas, uniqueSchema } from '@coremachine/test-kit';
import { noopJob } from './noop-job.ts';
import pg from 'pg';

const i = process.argv.indexOf('--jobs');
const JOBS = i > 0 ? Number(process.argv[i + 1]) : 200;

const counts = new Map<string, number>();
const millis = new Map<string, number>();
let total = 0;
const original = pg.Client.prototype.query as (...args: unknown[]) => unknown;
pg.Client.prototype.query = function (this: pg.Client, ...args: unknown[]) {
  const first = args[0];
  const text = typeof first === 'string' ? first : ((first as { text?: string } | null)?.text ?? '?');
  const key = text.replace(/\s+/g, ' ').trim().slice(0, 90);
  counts.set(key, (counts.get(key) ?? 0) + 1);
  total++;
  const t0 = performance.now();
  const result = original.apply(this, args);
  if (result instanceof Promise)
    void result.then(
      () => millis.set(key, (millis.get(key) ?? 0) + performance.now() - t0),
      () => {},
    );
  return result;
} as typeof pg.Client.prototype.query;

const small = noopJob('bench_small', 'a few tasks that do nothing', {
  batchSize: 1000,
  concurrency: 2,
  tasksPerMessage: 10,
});

const schema = uniqueSchema('benchp');
const machine = await CoreMachine.start({
  connectionString: DATABASE_URL,
  plugins: [small],
  config: { schema, pollingIntervalSeconds: 0.5, poolMax: 10 },
  log: { info() {}, warn() {}, error: (m, f) => console.error(m, f) },
});
await machine.startWorker();
await new Promise((r) => setTimeout(r, 1000));
counts.clear();
millis.clear();
total = 0;
const t0 = performance.now();
for (let k = 0; k < JOBS; k += 50)
  await Promise.all(
    Array.from({ length: Math.min(50, JOBS - k) }, (_, m) => machine.submit('bench_small', { n: 10, run: `${k + m}` })),
  );
for (;;) {
  const {
    rows: [c],
  } = await machine.pool.query(
    `SELECT count(*) FILTER (WHERE status = 'completed')::int AS done FROM "${schema}".jobs`,
  );
  if (c.done >= JOBS) break;
  await new Promise((r) => setTimeout(r, 20));
}
const ms = performance.now() - t0;
const seconds = ms / 1000;
await machine.close();
if (!process.argv.includes('--keep')) await dropSchemas(schema);
else console.log(`kept schema ${schema}`);
console.log('per job, seconds waited in all (overlapping), statement');
console.log(
  `${JOBS} jobs in ${seconds.toFixed(2)} s; ${total} statements (${(total / JOBS).toFixed(1)} per job, polling included)`,
);
for (const [k, n] of [...counts.entries()].sort((a, b) => b[1] - a[1]).slice(0, 40))
  console.log(`${(n / JOBS).toFixed(2).padStart(7)} ${((millis.get(k) ?? 0) / 1000).toFixed(2).padStart(6)} s  ${k}`);
