/**
 * Benchmark (not a test): ingest_vector against `ogr2ogr -f PostgreSQL --config PG_USE_COPY YES`
 * on the same files, in the same run: a 1,000,000-point GeoPackage and a 100,000-polygon one,
 * both generated here. ogr2ogr runs twice: on the local file, and on the same blob through
 * /vsiaz/ (same Azurite, GDAL configured from the storage settings), which is what the job
 * reads. Prints rows/s for each and both ratios (ours / ogr2ogr). Each dataset first gets one
 * untimed warm-up round of all three (PostgreSQL's catalog and buffers, Azurite's and this
 * process's JIT are then warm for every contender alike); the job is timed from submit
 * until the completion time the ledger records for it (same machine, same clock; no polling delay).
 *
 *   source scripts/env.sh && cd bench && node --import tsx ingest/run.ts [--points 1000000] [--polygons 100000] [--chunk-size N] [--rounds N] [--local-copy-max-bytes N]
 *     [--data-dir DIR]
 *
 * The three sizes of the targets (>= 1.0x /vsiaz/ at 100,000 polygons, >= 1.5x at 1,000,000 points
 * and at 1,000,000 polygons), one run each:
 *   node --import tsx ingest/run.ts --points 0 --polygons 100000
 *   node --import tsx ingest/run.ts --points 1000000 --polygons 0
 *   node --import tsx ingest/run.ts --points 0 --polygons 1000000
 *
 * Needs PostgreSQL (DATABASE_URL) and Azurite (started if not running).
 */
import { execFileSync } from 'node:child_process';
import { createWriteStream, existsSync, mkdtempSync, renameSync, rmSync } from 'node:fs';
import { once } from 'node:events';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { createStorage, ensureAzurite, gdalConfigFor, storageConfigFromEnv, vsiazPath } from '@coremachine/storage';
import { createTestMachine, DATABASE_URL } from '@coremachine/test-kit';
import ingestVector from '@coremachine/job-ingest-vector';

const arg = (name: string, def: number) => {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? Number(process.argv[i + 1]) : def;
};
const POINTS = arg('points', 1_000_000);
const POLYGONS = arg('polygons', 100_000);
/** `--chunk-size N` passes chunk_size to the job (default: auto). */
const CHUNK_SIZE = arg('chunk-size', 0);
/**
 * `--local-copy-max-bytes N` sets the job's `localCopyMaxBytes` (sources up to N bytes are read
 * from a worker's local copy, larger ones in place through /vsiaz/; default: the job's default).
 */
const LOCAL_COPY_MAX = arg('local-copy-max-bytes', -1);
/** `--rounds N`: N alternating timed rounds of the three loads, medians reported (default 3). */
const ROUNDS = Math.max(1, arg('rounds', 3));
const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
};
/**
 * `--data-dir DIR` keeps the generated GeoPackages in DIR (as `<name>-<n>.gpkg`) and reuses them
 * in later runs (default: a temporary folder, removed at the end).
 */
const dataDirIndex = process.argv.indexOf('--data-dir');
const DATA_DIR = dataDirIndex > 0 ? process.argv[dataDirIndex + 1] : undefined;
const dir = DATA_DIR ?? mkdtempSync(join(tmpdir(), 'cm-bench-ingest-'));

/** Writes a CSV of WKT rows and converts it to a GeoPackage with ogr2ogr (C speed). */
async function makeGpkg(name: string, n: number, wkt: (i: number) => string): Promise<string> {
  const kept = join(dir, `${name}-${n}.gpkg`);
  if (DATA_DIR && existsSync(kept)) return kept;
  const csv = join(dir, `${name}.csv`);
  const out = createWriteStream(csv);
  out.write('id,name,value,wkt\n');
  for (let i = 0; i < n; i++) {
    if (!out.write(`${i},feature ${i},${(i * 0.37).toFixed(3)},"${wkt(i)}"\n`)) await once(out, 'drain');
  }
  out.end();
  await once(out, 'finish');
  const gpkg = join(dir, `${name}.gpkg`);
  execFileSync('ogr2ogr', [
    '-f',
    'GPKG',
    gpkg,
    csv,
    '-oo',
    'GEOM_POSSIBLE_NAMES=wkt',
    '-oo',
    'KEEP_GEOM_COLUMNS=NO',
    '-oo',
    'AUTODETECT_TYPE=YES',
    '-a_srs',
    'EPSG:4326',
    '-nln',
    name,
    '-nlt',
    name === 'points' ? 'POINT' : 'MULTIPOLYGON',
    '-gt',
    '100000',
  ]);
  rmSync(csv, { force: true });
  if (!DATA_DIR) return gpkg;
  renameSync(gpkg, kept);
  return kept;
}

const pt = (i: number) =>
  `POINT (${(-180 + (i % 3600) * 0.1).toFixed(4)} ${(-80 + Math.floor(i / 3600) * 0.05).toFixed(4)})`;
const poly = (i: number) => {
  const x = -170 + (i % 1000) * 0.3;
  const y = -60 + Math.floor(i / 1000) * 1.2;
  return `MULTIPOLYGON (((${x} ${y},${x + 0.2} ${y},${x + 0.25} ${y + 0.1},${x + 0.2} ${y + 0.2},${x + 0.1} ${y + 0.25},${x} ${y + 0.2},${x} ${y})))`;
};

async function main() {
  const azurite = await ensureAzurite();
  const storage = createStorage(storageConfigFromEnv());
  const container = `bench-${randomBytes(3).toString('hex')}`;
  await storage.ensureContainer(container);
  const schema = `bench_${randomBytes(3).toString('hex')}`;
  const pool = new pg.Pool({ connectionString: DATABASE_URL, max: 2 });
  await pool.query(`create schema "${schema}"`);
  const tm = await createTestMachine({
    plugins: [ingestVector],
    services: {
      vector: {
        schemas: [schema],
        ...(LOCAL_COPY_MAX >= 0 ? { localCopyMaxBytes: LOCAL_COPY_MAX } : {}),
      },
    },
  });
  const rows: string[] = [];
  try {
    for (const [name, n, wkt] of [
      ['points', POINTS, pt],
      ['polygons', POLYGONS, poly],
    ] as const) {
      // `--points 0` or `--polygons 0` leaves a size out.
      if (!n) continue;
      process.stderr.write(`generating ${n} ${name}...\n`);
      const file = await makeGpkg(name, n, wkt);

      // Rounds alternate ours, ogr2ogr local, ogr2ogr /vsiaz/ (a busy machine then slows all
      // three alike); the medians are reported.
      const ourTimes: number[] = [];
      const localTimes: number[] = [];
      const blobTimes: number[] = [];
      let written = 0;
      let chunks = 0;
      // Round 0 is the untimed warm-up.
      for (let round = 0; round <= ROUNDS; round++) {
        // A new version of the blob each round: the job's workers then fetch it again (they keep
        // a blob version they have read for a while, see ingest_vector's local-copy.ts).
        await storage.uploadFile(container, `${name}.gpkg`, file);
        // Each contender starts without the WAL of the one before it pending a checkpoint.
        await pool.query('checkpoint');
        const submittedAt = Date.now();
        const job = await tm.submitAndWait(
          'ingest_vector',
          {
            container_name: container,
            blob_name: `${name}.gpkg`,
            table_name: `cm_${name}_${round}`,
            schema,
            ...(CHUNK_SIZE ? { chunk_size: CHUNK_SIZE } : {}),
          },
          { timeoutMs: 1_800_000 },
        );
        const ourTime = (Date.parse(job.completedAt!) - submittedAt) / 1000;
        if (job.status !== 'completed') throw new Error(`ingest_vector ${job.status}: ${JSON.stringify(job.error)}`);
        ({ features_written: written, chunks } = job.result as { features_written: number; chunks: number });
        // Where the time went: wall time of each stage (first task start to last task end).
        const tasks = await tm.tasks(job.id);
        const stages = ['prepare', 'load', 'finalize'].map((stage) => {
          const ts = tasks.filter((x) => x.stageName === stage && x.startedAt && x.completedAt);
          const t0 = Math.min(...ts.map((x) => Date.parse(x.startedAt!)));
          const t1 = Math.max(...ts.map((x) => Date.parse(x.completedAt!)));
          return `${stage} ${((t1 - t0) / 1000).toFixed(1)} s`;
        });
        // ogr2ogr on the local file, then on the blob through /vsiaz/ (GDAL options in the
        // environment: for key auth they hold the key, which must not show in a process list).
        const ogr = async (label: string, input: string, env: Record<string, string>) => {
          const table = `ogr_${label}_${name}_${round}`;
          await pool.query('checkpoint');
          const t0 = performance.now();
          execFileSync(
            'ogr2ogr',
            [
              '-f',
              'PostgreSQL',
              `PG:host=127.0.0.1 dbname=coremachine user=postgres`,
              input,
              '-nln',
              `${schema}.${table}`,
              '-nlt',
              'PROMOTE_TO_MULTI',
              '-t_srs',
              'EPSG:4326',
              '-lco',
              'GEOMETRY_NAME=geom',
              '--config',
              'PG_USE_COPY',
              'YES',
            ],
            { env: { ...process.env, ...env } },
          );
          const s = (performance.now() - t0) / 1000;
          const ref = (await pool.query(`select count(*)::int n from "${schema}".${table}`)).rows[0].n as number;
          if (ref !== written)
            process.stderr.write(`  warning: ogr2ogr (${label}) wrote ${ref} rows, ingest_vector ${written}\n`);
          return s;
        };
        const localTime = await ogr('local', file, {});
        const blobTime = await ogr('vsiaz', vsiazPath(container, `${name}.gpkg`), gdalConfigFor(storage.config));
        process.stderr.write(
          `  ${name} ${round ? `round ${round}` : 'warm-up'}: ingest_vector ${ourTime.toFixed(2)} s (${stages.join(', ')}), ogr2ogr local ${localTime.toFixed(2)} s, /vsiaz/ ${blobTime.toFixed(2)} s\n`,
        );
        if (round === 0) continue;
        ourTimes.push(ourTime);
        localTimes.push(localTime);
        blobTimes.push(blobTime);
      }
      const ours = median(ourTimes);
      const local = median(localTimes);
      const blob = median(blobTimes);
      const rate = (s: number) => Math.round(written / s);
      rows.push(
        `${name.padEnd(9)} n=${n}  ingest_vector ${ours.toFixed(2)} s (${rate(ours)} rows/s, ${chunks} chunks)` +
          `  ogr2ogr local ${local.toFixed(2)} s (${rate(local)} rows/s)  ogr2ogr /vsiaz/ ${blob.toFixed(2)} s (${rate(blob)} rows/s)` +
          `  ratio ours/ogr2ogr: local ${(local / ours).toFixed(2)}, /vsiaz/ ${(blob / ours).toFixed(2)}${ROUNDS > 1 ? `  (medians of ${ROUNDS} rounds after a warm-up)` : ''}`,
      );
      process.stderr.write(rows.at(-1) + '\n');
    }
  } finally {
    await tm.close();
    await pool.query(`drop schema if exists "${schema}" cascade`);
    await pool.end();
    await storage.deleteContainer(container).catch(() => {});
    await azurite.stop();
    if (!DATA_DIR) rmSync(dir, { recursive: true, force: true });
  }
  console.log(rows.join('\n'));
}

await main();
