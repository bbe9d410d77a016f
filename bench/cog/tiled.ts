/**
 * `node bench/cog/run.ts --tiled [--size 40000] [--window 4096] [--workers 1,2] [--skip-baseline]`
 * (not a test): process_raster's tiled path on a size x size x 3 Byte EPSG:3857 input (the same
 * input as the single-COG bench), with 1 and with 2 worker processes, next to one
 * `gdalwarp -of COG -wo NUM_THREADS=ALL_CPUS` run on the same (local) input.
 *
 * Ours: the input is uploaded to the blob store (Azurite), the job runs with
 * `tiled_threshold_mb: 0` on N worker child processes (the API machine runs no tasks). Peak RSS
 * is sampled per worker process from /proc; peak local disk is the largest size of the workers'
 * TMPDIR (a folder of this run). Window and assembly stage times come from the ledger's task
 * start and end times; the projection for 8/32/128 workers is validate + ceil(windows / n) x
 * the mean window time + assembly (the assembly is serial).
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { mkdir, mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { createStorage, ensureAzurite, storageConfigFromEnv } from '@coremachine/storage';
import { createTestMachine, type TestMachine } from '@coremachine/test-kit';
import { makeInput } from './make-input.ts';

const exec = promisify(execFile);
const here = path.dirname(fileURLToPath(import.meta.url));
const arg = (name: string, fallback: string) => {
  const i = process.argv.indexOf(name);
  return i > 0 ? process.argv[i + 1]! : fallback;
};
const size = Number(arg('--size', '40000'));
const windowSize = Number(arg('--window', '4096'));
const workerCounts = arg('--workers', '1,2').split(',').map(Number);
const skipBaseline = process.argv.includes('--skip-baseline');
const storage = createStorage(storageConfigFromEnv());
const fmt = (s: number) => s.toFixed(1);

async function rssMbOf(pid: number): Promise<number> {
  const status = await readFile(`/proc/${pid}/status`, 'utf8').catch(() => '');
  const kb = /VmRSS:\s+(\d+)/.exec(status)?.[1];
  return kb ? Number(kb) / 1024 : 0;
}

async function duMb(dir: string): Promise<number> {
  const { stdout } = await exec('du', ['-sk', dir]).catch(() => ({ stdout: '0' }));
  return Number(stdout.split('\t')[0]) / 1024;
}

function startWorker(schema: string, tmpdir: string): Promise<ChildProcess> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', path.join(here, 'tiled-worker.ts'), schema], {
      env: { ...process.env, TMPDIR: tmpdir, GDAL_CACHEMAX: '256' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    child.stdout!.on('data', (d: Buffer) => {
      out += d;
      if (out.includes('ready')) resolve(child);
    });
    child.stderr!.on('data', (d: Buffer) => (out += d));
    child.once('exit', (code) => reject(new Error(`worker exited with ${code}: ${out.slice(-2000)}`)));
  });
}

interface TaskTimes {
  stageName: string;
  startedAt: string | null;
  completedAt: string | null;
}
const ms = (t: string | null) => (t ? Date.parse(t) : NaN);

async function runOurs(tm: TestMachine, container: string, blob: string, workers: number, work: string) {
  const tmpdir = path.join(work, `tmp-${workers}`);
  await mkdir(tmpdir, { recursive: true });
  const children = await Promise.all(Array.from({ length: workers }, () => startWorker(tm.schema, tmpdir)));
  const peakRss = children.map(() => 0);
  let peakDisk = 0;
  let sampling = true;
  const sampler = (async () => {
    while (sampling) {
      for (const [i, c] of children.entries()) peakRss[i] = Math.max(peakRss[i]!, await rssMbOf(c.pid!));
      peakDisk = Math.max(peakDisk, await duMb(tmpdir));
      await new Promise((r) => setTimeout(r, 250));
    }
  })();
  const t0 = performance.now();
  // A distinct window size per run keeps the job ids apart (no reuse of the other run's windows).
  const { jobId } = await tm.submit('process_raster', {
    container_name: container,
    blob_name: blob,
    tiled_threshold_mb: 0,
    window_size: windowSize,
    output_container: `bench-tiled-${workers}`,
  });
  const job = await tm.waitFor(jobId, { timeoutMs: 6 * 3600_000 });
  const wall = (performance.now() - t0) / 1000;
  sampling = false;
  await sampler;
  for (const c of children) c.kill('SIGTERM');
  if (job.status !== 'completed') throw new Error(`job ${job.status}: ${JSON.stringify(job.error)}`);
  const tasks = (await tm.tasks(jobId)) as TaskTimes[];
  const span = (name: string) => {
    const ts = tasks.filter((t) => t.stageName === name);
    return {
      n: ts.length,
      wall: (Math.max(...ts.map((t) => ms(t.completedAt))) - Math.min(...ts.map((t) => ms(t.startedAt)))) / 1000,
      sum: ts.reduce((s, t) => s + (ms(t.completedAt) - ms(t.startedAt)) / 1000, 0),
    };
  };
  const result = job.result as { cog: { size_mb: number; overview_levels: number[] } };
  return {
    workers,
    wall,
    validate: span('validate'),
    windows: span('windows'),
    assemble: span('create_cog'),
    peakRss,
    peakDisk,
    cogMb: result.cog.size_mb,
    overviews: result.cog.overview_levels,
  };
}

const work = await mkdtemp(path.join(os.tmpdir(), 'cm-bench-tiled-'));
let tm: TestMachine | undefined;
// A handle on the shared Azurite for the whole run: test suites that finish meanwhile do not stop it.
const azurite = await ensureAzurite();
try {
  console.log(
    `load average at start ${os
      .loadavg()
      .map((l) => l.toFixed(1))
      .join(' ')}, ${os.availableParallelism()} cores`,
  );
  const input = path.join(work, 'input.tif');
  let t = performance.now();
  makeInput(input, size);
  const inputMb = (await stat(input)).size / 2 ** 20;
  console.log(
    `input: ${size} x ${size} x 3 Byte, EPSG:3857, ${inputMb.toFixed(0)} MB (made in ${fmt((performance.now() - t) / 1000)} s)`,
  );
  // A container of this run's own: nothing else lists or clears it while the run goes on.
  const source = `bench-tiled-src-${process.pid}`;
  await storage.ensureContainer(source);
  const blob = `input_${size}.tif`;
  t = performance.now();
  await storage.uploadFile(source, blob, input);
  console.log(`uploaded to ${source}/${blob} in ${fmt((performance.now() - t) / 1000)} s`);

  let baseline: { seconds: number; rssMb: number; diskMb: number } | null = null;
  if (!skipBaseline) {
    const out = path.join(work, 'baseline_cog.tif');
    const timeFile = path.join(work, 'time.txt');
    let disk = 0;
    let sampling = true;
    const sampler = (async () => {
      while (sampling) {
        disk = Math.max(disk, (await duMb(work)) - inputMb);
        await new Promise((r) => setTimeout(r, 500));
      }
    })();
    t = performance.now();
    await exec(
      '/usr/bin/time',
      [
        '-f',
        '%M',
        '-o',
        timeFile,
        'gdalwarp',
        '-q',
        '-of',
        'COG',
        '-t_srs',
        'EPSG:4326',
        '-r',
        'cubic',
        '-multi',
        '-wo',
        'NUM_THREADS=ALL_CPUS',
        '-wm',
        '128',
        '-dstalpha',
        '-co',
        'COMPRESS=JPEG',
        '-co',
        'QUALITY=85',
        '-co',
        'BLOCKSIZE=512',
        '-co',
        'OVERVIEW_RESAMPLING=CUBIC',
        '-co',
        'NUM_THREADS=ALL_CPUS',
        '-co',
        'BIGTIFF=IF_SAFER',
        input,
        out,
      ],
      {
        env: { ...process.env, GDAL_CACHEMAX: '256' },
      },
    );
    sampling = false;
    await sampler;
    const seconds = (performance.now() - t) / 1000;
    const rssMb = Number((await readFile(timeFile, 'utf8')).trim().split('\n').pop()) / 1024;
    baseline = { seconds, rssMb, diskMb: disk };
    console.log(
      `baseline gdalwarp -of COG -wo NUM_THREADS=ALL_CPUS (local input): ${fmt(seconds)} s, peak RSS ${rssMb.toFixed(0)} MB, peak local disk ${disk.toFixed(0)} MB, COG ${((await stat(out)).size / 2 ** 20).toFixed(1)} MB`,
    );
    await rm(out, { force: true });
  }

  tm = await createTestMachine({
    plugins: [(await import('../../packages/job-process-raster/src/index.ts')).default],
    worker: false,
  });
  for (const n of workerCounts) {
    const r = await runOurs(tm, source, blob, n, work);
    console.log(
      `ours, ${n} worker process(es): wall ${fmt(r.wall)} s (validate+plan ${fmt(r.validate.wall)} s, windows stage ${fmt(r.windows.wall)} s for ${r.windows.n} windows [task time summed ${fmt(r.windows.sum)} s, mean ${fmt(r.windows.sum / r.windows.n)} s], assembly ${fmt(r.assemble.wall)} s), peak RSS per worker ${r.peakRss.map((m) => m.toFixed(0)).join(' / ')} MB, peak local disk ${r.peakDisk.toFixed(0)} MB, COG ${r.cogMb.toFixed(1)} MB, overviews ${r.overviews.join('/')}` +
        (baseline ? `; ratio ours/baseline ${(r.wall / baseline.seconds).toFixed(2)}x` : ''),
    );
    const mean = r.windows.sum / r.windows.n;
    const proj = [8, 32, 128].map((w) => {
      const total = r.validate.wall + Math.ceil(r.windows.n / w) * mean + r.assemble.wall;
      return `${w} workers ${fmt(total)} s (assembly ${((r.assemble.wall / total) * 100).toFixed(0)} %)`;
    });
    console.log(`  projected from this run (validate + ceil(windows/n) x mean window + assembly): ${proj.join(', ')}`);
    await storage.deleteContainer(`bench-tiled-${n}`).catch(() => false);
  }
  await storage.deleteContainer(source);
  console.log(
    `load average at end ${os
      .loadavg()
      .map((l) => l.toFixed(1))
      .join(' ')}`,
  );
} finally {
  await tm?.close();
  await rm(work, { recursive: true, force: true });
  await azurite.stop();
}
