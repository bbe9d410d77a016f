/**
 * bench/soak: 1,000 jobs of mixed types under faults, on a PostgreSQL cluster and an Azurite of
 * its own, with the real server processes (one API, `--workers` workers: apps/server main.ts).
 *
 *   pnpm --filter @coremachine/bench soak [--minutes 10] [--jobs 1000] [--workers 3] [--no-faults]
 *
 * The mix: hello_world with failure injection (70 %), validate_raster on a tiny GDAL-made raster
 * (10 %), ingest_vector of a small GeoJSON (10 %), stac_catalog_container over a few tiny rasters
 * (10 %), submitted over the first 60 % of the time (counted after the set-up). Meanwhile, for
 * 80 % of the time or until all settle, every 3-8 s a worker process is SIGKILLed (and replaced)
 * or SIGSTOPped for 7 s, past its 5 s lease (a zombie), then SIGCONT; PostgreSQL is restarted once
 * (2 s down). Then it waits for every job to settle (or the time to
 * run out) and prints: jobs settled (per type), tasks settled twice (stage counters beyond the
 * tasks that settled: must be 0), jobs stuck (not settled at the end: must be 0) and p50/p99
 * submit→settled. `--no-faults` is the baseline: the same jobs without kills, stops or restart.
 * Exits 1 when a task settled twice, a job is stuck or a process crashed.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createStorage, ensureAzurite, parseStorageConfig } from '@coremachine/storage';
import { startPostgres } from '@coremachine/test-kit';
import pg from 'pg';
import { startServer, type ServerProcess } from './processes.ts';

const flag = (name: string) => {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? Number(process.argv[i + 1]) : undefined;
};
const MINUTES = flag('minutes') ?? 10;
const JOBS = flag('jobs') ?? 1000;
const WORKERS = flag('workers') ?? 3;
const FAULTS = !process.argv.includes('--no-faults');
const RASTERS = 200;
const STAC_RASTERS = 4;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const setupStart = Date.now();

// Infrastructure of its own: PostgreSQL, Azurite, test data made with GDAL.
const dir = mkdtempSync(join(tmpdir(), 'cm-soak-'));
const pgi = await startPostgres();
const azurite = await ensureAzurite({ port: 10_000 + 1_700 + (process.pid % 300), location: join(dir, 'azurite') });
const storage = createStorage(parseStorageConfig({ kind: 'azurite', endpoint: azurite.endpoint }));
await storage.ensureContainer('bronze');
const raster = join(dir, 'tiny.tif');
execFileSync('gdal_create', [
  ...['-of', 'GTiff', '-outsize', '32', '32', '-bands', '1', '-ot', 'Byte', '-burn', '7'],
  ...['-a_srs', 'EPSG:4326', '-a_ullr', '10', '50', '10.032', '49.968', raster],
]);
await Promise.all(
  Array.from({ length: RASTERS }, (_, i) => storage.uploadFile('bronze', `soak/rasters/r${i}.tif`, raster)),
);
await Promise.all(
  Array.from({ length: STAC_RASTERS }, (_, i) => storage.uploadFile('bronze', `soak/stac/s${i}.tif`, raster)),
);
const features = Array.from({ length: 20 }, (_, i) => ({
  type: 'Feature',
  properties: { id: i, name: `p${i}` },
  geometry: { type: 'Point', coordinates: [10 + i / 100, 50 - i / 100] },
}));
const vector = join(dir, 'points.geojson');
writeFileSync(vector, JSON.stringify({ type: 'FeatureCollection', features }));
await storage.uploadFile('bronze', 'soak/points.geojson', vector);

const env = {
  DATABASE_URL: pgi.url,
  CM_EMBEDDED_AZURITE: 'false',
  CM_AZURITE_ENDPOINT: azurite.endpoint,
  CM_LEASE_SECONDS: '5',
  CM_RETRY_BASE_DELAY_MS: '200',
  CM_RETRY_MAX_DELAY_MS: '2000',
  CM_LOG_LEVEL: 'error',
  CM_STORAGE_REQUEST_TIMEOUT_MS: '5000',
  CM_STORAGE_TOTAL_TIMEOUT_MS: '15000',
};
const stats = { kills: 0, stops: 0, pgRestarts: 0, submitErrors: 0, crashes: 0, failedStarts: 0 };
const onCrash = (p: ServerProcess, code: number | null) => {
  stats.crashes++;
  process.stderr.write(`${p.role} ${p.child.pid} exited ${code}: ${p.output().slice(-2000)}\n`);
};
const api = await startServer({ ...env, CM_ROLE: 'api', CM_API_PORT: '0' }, onCrash);
const workers = new Set<ServerProcess>();
const spawnWorker = async (tries = 1) => {
  for (let attempt = 1; ; attempt++) {
    try {
      const w = await startServer({ ...env, CM_ROLE: 'worker' }, onCrash);
      workers.add(w);
      void w.exited.then(() => workers.delete(w));
      return;
    } catch (err) {
      // During the PostgreSQL restart a start may fail: try again (a failed start is counted).
      if (attempt >= tries) throw err;
      stats.failedStarts++;
      process.stderr.write(`a worker did not start (${attempt}/${tries}): ${(err as Error).message.slice(0, 300)}\n`);
      await sleep(2_000);
    }
  }
};
await Promise.all(Array.from({ length: WORKERS }, () => spawnWorker()));
const spawning: Promise<void>[] = [];
// The run's windows count from here (set-up done): submits over 60 % of it, faults over 80 %.
const t0 = Date.now();
const deadline = t0 + MINUTES * 60_000;
const submitUntil = t0 + MINUTES * 60_000 * 0.6;
const chaosUntil = t0 + MINUTES * 60_000 * 0.8;
console.log(
  `bench/soak${FAULTS ? '' : ' (baseline: no faults)'}: ${JOBS} jobs of 4 types, ${WORKERS} worker processes + 1 API (apps/server), ${MINUTES} min at most; PostgreSQL on port ${pgi.port}, Azurite on ${azurite.endpoint}; set up in ${((t0 - setupStart) / 1000).toFixed(0)} s`,
);

// Chaos: every 3-8 s, SIGKILL a worker (replaced) or SIGSTOP one past its 5 s lease, then SIGCONT.
let chaos = FAULTS;
const chaosLoop = (async () => {
  const restartAt = Date.now() + (submitUntil - Date.now()) * 0.5;
  let restarted = false;
  while (chaos) {
    await sleep(3_000 + Math.random() * 5_000);
    if (!chaos) break;
    if (!restarted && Date.now() > restartAt) {
      restarted = true;
      stats.pgRestarts++;
      await pgi.restart({ downMs: 2_000 });
      continue;
    }
    const list = [...workers];
    const victim = list[Math.floor(Math.random() * list.length)];
    if (!victim?.child.pid) continue;
    if (Math.random() < 0.5) {
      stats.kills++;
      victim.expectDeath();
      victim.child.kill('SIGKILL');
      // Its replacement starts meanwhile (seconds on a loaded machine).
      spawning.push(
        spawnWorker(5).catch((err: Error) => {
          stats.crashes++;
          process.stderr.write(`a replacement worker did not start: ${err.message}\n`);
        }),
      );
    } else {
      stats.stops++;
      victim.child.kill('SIGSTOP');
      await sleep(7_000);
      victim.child.kill('SIGCONT');
    }
  }
})();

type Submit = { type: string; params: Record<string, unknown> };
let validated = 0;
const jobFor = (i: number): Submit => {
  const r = Math.random();
  if (r < 0.7)
    return {
      type: 'hello_world',
      params: { n: 1 + Math.floor(Math.random() * 8), message: `soak ${i}`, failure_rate: Math.random() * 0.3 },
    };
  // Each validate_raster job gets a raster copy of its own (same parameters would be the same job).
  if (r < 0.8) return { type: 'validate_raster', params: { blob_name: `soak/rasters/r${validated++ % RASTERS}.tif` } };
  if (r < 0.9)
    return { type: 'ingest_vector', params: { blob_name: 'soak/points.geojson', table_name: `soak_v_${i}` } };
  return { type: 'stac_catalog_container', params: { container_name: 'bronze', prefix: 'soak/stac/', limit: i + 1 } };
};

const submitted = new Map<string, string>();
const refusals = new Map<string, number>();
// A few submitters at once, paced so that the jobs spread over the submit window.
const SUBMITTERS = 4;
let nextJob = 0;
const submitter = async () => {
  for (let i = nextJob++; i < JOBS && Date.now() < deadline; i = nextJob++) {
    const due = t0 + ((submitUntil - t0) * i) / JOBS;
    if (due > Date.now()) await sleep(due - Date.now());
    await submitOne(i);
  }
};
const submitOne = async (i: number) => {
  const job = jobFor(i);
  let done = false;
  while (!done && Date.now() < deadline) {
    try {
      const res = await fetch(`${api.url}/api/v1/jobs`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify(job),
        signal: AbortSignal.timeout(10_000),
      });
      const body = (await res.json()) as { jobId?: string };
      // 200: the same job again (an earlier try did commit though its answer was lost).
      if ((res.status !== 201 && res.status !== 200) || !body.jobId)
        throw new Error(`submit answered ${res.status}: ${JSON.stringify(body)}`);
      submitted.set(body.jobId, job.type);
      done = true;
    } catch (err) {
      stats.submitErrors++; // PostgreSQL down: submit again (same parameters, same job)
      const why = (err as Error).message.slice(0, 120);
      refusals.set(why, (refusals.get(why) ?? 0) + 1);
      await sleep(200);
    }
  }
};
await Promise.all(Array.from({ length: SUBMITTERS }, submitter));
console.log(
  `submitted ${submitted.size} jobs in ${((Date.now() - t0) / 1000).toFixed(0)} s; waiting for them to settle`,
);

const db = new pg.Pool({ connectionString: pgi.url, max: 2 });
db.on('error', () => {});
const s = '"coremachine"';
const terminal = `('completed','failed','cancelled')`;
for (;;) {
  const c = await db
    .query(`SELECT count(*) FILTER (WHERE status IN ${terminal})::int AS settled FROM ${s}.jobs`)
    .then((r) => r.rows[0] as { settled: number })
    .catch(() => ({ settled: -1 }));
  if (c.settled >= submitted.size || Date.now() > deadline) break;
  if (Date.now() > chaosUntil) chaos = false; // let the tail settle without faults
  await sleep(500);
}
chaos = false;
await chaosLoop;
await Promise.all(spawning);

const q = async (sql: string) => (await db.query(sql)).rows;
const byType = await q(
  `SELECT type, count(*)::int AS jobs, count(*) FILTER (WHERE status IN ${terminal})::int AS settled,
          count(*) FILTER (WHERE status = 'completed')::int AS completed, count(*) FILTER (WHERE status = 'failed')::int AS failed,
          count(*) FILTER (WHERE status NOT IN ${terminal})::int AS stuck,
          percentile_cont(0.5) WITHIN GROUP (ORDER BY extract(epoch FROM completed_at - created_at)) FILTER (WHERE status IN ${terminal}) AS p50,
          percentile_cont(0.99) WITHIN GROUP (ORDER BY extract(epoch FROM completed_at - created_at)) FILTER (WHERE status IN ${terminal}) AS p99
   FROM ${s}.jobs GROUP BY ROLLUP (type) ORDER BY type NULLS LAST`,
);
const [twice] = await q(
  `SELECT (SELECT COALESCE(sum(completed + failed), 0) FROM ${s}.stages)::int
        - (SELECT count(*) FROM ${s}.tasks WHERE status IN ('completed', 'failed'))::int AS n`,
);
const [tasks] = await q(
  `SELECT count(*) FILTER (WHERE status IN ('completed', 'failed'))::int AS settled, count(*) FILTER (WHERE attempts > 1)::int AS retried FROM ${s}.tasks`,
);
const [failures] = await q(
  `SELECT string_agg(DISTINCT error->>'code', ', ') AS codes FROM ${s}.jobs WHERE status = 'failed'`,
);
// Jobs not settled when the time ran out: stuck, or still moving (an event in the last 15 s:
// a backlog on a loaded machine rather than a hang).
const [open] = await q(
  `SELECT count(*)::int AS n,
          count(*) FILTER (WHERE EXISTS (SELECT 1 FROM ${s}.job_events e WHERE e.job_id = j.id AND e.at > now() - interval '15 seconds'))::int AS moving,
          count(*) FILTER (WHERE j.status = 'queued')::int AS queued
   FROM ${s}.jobs j WHERE j.status NOT IN ${terminal}`,
);
const all = byType.at(-1)!;
const f = (v: unknown) => Number(v).toFixed(2);
for (const t of byType.slice(0, -1))
  console.log(
    `  ${String(t.type).padEnd(24)} ${t.settled}/${t.jobs} settled (${t.completed} completed, ${t.failed} failed), p50 ${f(t.p50)} s, p99 ${f(t.p99)} s`,
  );
console.log(`jobs settled: ${all.settled} of ${submitted.size} (${all.completed} completed, ${all.failed} failed)`);
console.log(`failure codes of failed jobs: ${failures.codes ?? 'none'}`);
console.log(
  `tasks settled: ${tasks.settled} (${tasks.retried} ran more than once); tasks settled twice: ${twice.n} (must be 0)`,
);
console.log(
  `jobs stuck: ${all.stuck} (must be 0)${all.stuck ? `: not settled when the time ran out; ${open.moving} of them with an event in the last 15 s, ${open.queued} still queued` : ''}`,
);
console.log(`submit→settled: p50 ${f(all.p50)} s, p99 ${f(all.p99)} s`);
console.log(
  `faults: ${stats.kills} SIGKILL, ${stats.stops} SIGSTOP past the lease, ${stats.pgRestarts} PostgreSQL restart; ${stats.submitErrors} submits refused during the outage (resubmitted); process crashes: ${stats.crashes}; worker starts that failed (tried again): ${stats.failedStarts}`,
);
for (const [why, n] of refusals) console.log(`  refused ${n}×: ${why}`);
console.log(
  `total ${((Date.now() - t0) / 1000).toFixed(0)} s after a set-up of ${((t0 - setupStart) / 1000).toFixed(0)} s`,
);
for (const w of workers) {
  w.expectDeath();
  w.child.kill('SIGKILL');
}
api.expectDeath();
api.child.kill('SIGKILL');
await db.end();
await azurite.stop();
await pgi.destroy();
rmSync(dir, { recursive: true, force: true });
process.exit(twice.n === 0 && all.stuck === 0 && stats.crashes === 0 ? 0 : 1);
