/**
 * Benchmark (not a test): process_raster's COG path against the GDAL command line.
 *
 *   source scripts/env.sh && node bench/cog/run.ts [--size 10000] [--repeat 3] [--ours-only]
 *   source scripts/env.sh && node bench/cog/run.ts --tiled [--size 40000] [--workers 1,2] (bench/cog/tiled.ts)
 *
 * Input: size x size x 3 Byte GeoTIFF in EPSG:3857, made here with GDAL. Ours: validation +
 * warp to EPSG:4326 + COG driver + COG layout check (bench/cog/ours.ts, a child process).
 * Baseline: `gdalwarp` then `gdal_translate -of COG` with the same options (cubic, JPEG 85,
 * 512 blocks, cubic overviews, ALL_CPUS, same GDAL_CACHEMAX and warp memory, `-dstalpha` as
 * ours marks the reprojection collar of RGB imagery). Both run on the
 * same machine in the same run; peak RSS comes from /usr/bin/time.
 */
import { execFile } from 'node:child_process';
import { mkdtemp, readdir, readFile, rm, stat } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { makeInput } from './make-input.ts';

// `--tiled`: the tiled path across worker processes (bench/cog/tiled.ts), instead of the single COG.
if (process.argv.includes('--tiled')) {
  await import('./tiled.ts');
  process.exit(0);
}
const exec = promisify(execFile);
const here = path.dirname(fileURLToPath(import.meta.url));
const sizeArg = process.argv.indexOf('--size');
const size = sizeArg > 0 ? Number(process.argv[sizeArg + 1]) : 10_000;
const repeatArg = process.argv.indexOf('--repeat');
const repeat = repeatArg > 0 ? Number(process.argv[repeatArg + 1]) : 1;
const oursOnly = process.argv.includes('--ours-only');
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor((xs.length - 1) / 2)]!;
const CACHE_MB = '256';

/** What bench/cog/ours.ts prints. */
interface OursDetail {
  type: string;
  compression: string;
  validate_s: number;
  cog_s: number;
  check_s: number;
  overviews: number[];
}

/** Pids of the processes below `pid` (children of every thread, recursively). */
async function descendants(pid: number): Promise<number[]> {
  const out: number[] = [];
  const tasks = await readdir(`/proc/${pid}/task`).catch(() => [] as string[]);
  for (const t of tasks) {
    const kids = await readFile(`/proc/${pid}/task/${t}/children`, 'utf8').catch(() => '');
    for (const k of kids.split(' ').filter(Boolean)) out.push(Number(k), ...(await descendants(Number(k))));
  }
  return out;
}

/** Resident MB of a process (VmRSS), 0 once it has gone. */
async function rssMbOf(pid: number): Promise<number> {
  const status = await readFile(`/proc/${pid}/status`, 'utf8').catch(() => '');
  const kb = /VmRSS:\s+(\d+)/.exec(status)?.[1];
  return kb ? Number(kb) / 1024 : 0;
}

/**
 * Runs a command under /usr/bin/time; returns wall seconds, peak RSS (MB, the largest single
 * process of the command's tree, from /usr/bin/time) and the peak of the whole tree's summed
 * RSS (sampled every 50 ms: a Node parent waiting on a GDAL child counts with it), and stdout.
 */
async function timed(
  cmd: string,
  args: string[],
  env: NodeJS.ProcessEnv = process.env,
): Promise<{ seconds: number; rssMb: number; treeMb: number; byProgram: Record<string, number>; stdout: string }> {
  const timeFile = path.join(os.tmpdir(), `cm-bench-time-${process.pid}-${Math.random().toString(36).slice(2)}`);
  try {
    const t0 = performance.now();
    const run = exec('/usr/bin/time', ['-f', '%M', '-o', timeFile, cmd, ...args], {
      env,
      maxBuffer: 1 << 24,
    });
    let treeMb = 0;
    const byProgram: Record<string, number> = {};
    let sampling = true;
    const sampler = (async () => {
      const root = run.child.pid!;
      while (sampling) {
        const pids = await descendants(root);
        let sum = 0;
        for (const p of pids) {
          const mb = await rssMbOf(p);
          const name = (await readFile(`/proc/${p}/comm`, 'utf8').catch(() => '?')).trim();
          byProgram[name] = Math.max(byProgram[name] ?? 0, mb);
          sum += mb;
        }
        treeMb = Math.max(treeMb, sum);
        await new Promise((r) => setTimeout(r, 50));
      }
    })();
    const { stdout } = await run.finally(() => {
      sampling = false;
    });
    await sampler;
    const seconds = (performance.now() - t0) / 1000;
    const rssKb = Number((await readFile(timeFile, 'utf8')).trim().split('\n').pop());
    return { seconds, rssMb: rssKb / 1024, treeMb: Math.max(treeMb, rssKb / 1024), byProgram, stdout };
  } finally {
    await rm(timeFile, { force: true });
  }
}

const dir = await mkdtemp(path.join(os.tmpdir(), 'cm-bench-cog-'));
try {
  const input = path.join(dir, 'input.tif');
  console.log(
    `load average at start ${os
      .loadavg()
      .map((l) => l.toFixed(1))
      .join(' ')}`,
  );
  const t = performance.now();
  makeInput(input, size);
  console.log(
    `input: ${size} x ${size} x 3 Byte, EPSG:3857, ${((await stat(input)).size / 2 ** 20).toFixed(0)} MB (made in ${((performance.now() - t) / 1000).toFixed(1)} s)`,
  );

  const baseOut = path.join(dir, 'baseline_cog.tif');
  const warped = path.join(dir, 'baseline_warped.tif');
  const env = { ...process.env, GDAL_CACHEMAX: CACHE_MB };
  const runBaseline = async () => {
    const w = await timed(
      'gdalwarp',
      [
        '-q',
        '-overwrite',
        '-t_srs',
        'EPSG:4326',
        '-r',
        'cubic',
        '-multi',
        '-wo',
        'NUM_THREADS=ALL_CPUS',
        '-wm',
        '128',
        '-co',
        'TILED=YES',
        '-co',
        'BLOCKXSIZE=512',
        '-co',
        'BLOCKYSIZE=512',
        '-co',
        'BIGTIFF=IF_SAFER',
        // The collar marking ours does for RGB + JPEG (an alpha band the COG driver makes a mask).
        '-dstalpha',
        input,
        warped,
      ],
      env,
    );
    const c = await timed(
      'gdal_translate',
      [
        '-q',
        '-of',
        'COG',
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
        warped,
        baseOut,
      ],
      env,
    );
    await rm(warped, { force: true });
    return {
      warp: w.seconds,
      cog: c.seconds,
      seconds: w.seconds + c.seconds,
      rssMb: Math.max(w.rssMb, c.rssMb),
      treeMb: Math.max(w.treeMb, c.treeMb),
    };
  };
  const oursOut = path.join(dir, 'ours_cog.tif');
  const runOurs = async () => {
    const work = await mkdtemp(path.join(dir, 'ours-'));
    const o = await timed(process.execPath, [path.join(here, 'ours.ts'), input, oursOut, work]);
    await rm(work, { recursive: true, force: true });
    return { ...o, detail: JSON.parse(o.stdout.trim().split('\n').pop()!) as OursDetail };
  };

  // Alternate the order on each round so that neither side always runs on a warmer page cache.
  const base: Array<Awaited<ReturnType<typeof runBaseline>>> = [];
  const ours: Array<Awaited<ReturnType<typeof runOurs>>> = [];
  for (let i = 0; i < repeat; i++) {
    if (i % 2 === 0) {
      if (!oursOnly) base.push(await runBaseline());
      ours.push(await runOurs());
    } else {
      ours.push(await runOurs());
      if (!oursOnly) base.push(await runBaseline());
    }
  }

  const mb = async (f: string) => ((await stat(f)).size / 2 ** 20).toFixed(1);
  const last = ours[ours.length - 1]!.detail;
  const oursS = median(ours.map((o) => o.seconds));
  const oursRss = Math.max(...ours.map((o) => o.rssMb));
  const oursTree = Math.max(...ours.map((o) => o.treeMb));
  const oursCog = median(ours.map((o) => o.detail.cog_s));
  const programs: Record<string, number> = {};
  for (const o of ours)
    for (const [name, mb] of Object.entries(o.byProgram)) programs[name] = Math.max(programs[name] ?? 0, mb);
  console.log(
    `ours (validate ${last.validate_s.toFixed(1)} s + warp/COG ${last.cog_s.toFixed(1)} s + check ${last.check_s.toFixed(2)} s): median ${oursS.toFixed(1)} s of [${ours.map((o) => o.seconds.toFixed(1)).join(', ')}] (warp/COG step median ${oursCog.toFixed(1)} s), peak RSS ${oursRss.toFixed(0)} MB (largest process; process tree ${oursTree.toFixed(0)} MB), COG ${await mb(oursOut)} MB, type ${last.type}, ${last.compression}, overviews ${last.overviews.join('/')}`,
  );
  console.log(
    `ours, sampled peak RSS by process: ${Object.entries(programs)
      .map(([name, mb]) => `${name} ${mb.toFixed(0)} MB`)
      .join(', ')}`,
  );
  if (!oursOnly) {
    const baseS = median(base.map((b) => b.seconds));
    const baseRss = Math.max(...base.map((b) => b.rssMb));
    const baseTree = Math.max(...base.map((b) => b.treeMb));
    console.log(
      `baseline (gdalwarp + gdal_translate -of COG): median ${baseS.toFixed(1)} s of [${base.map((b) => `${b.warp.toFixed(1)}+${b.cog.toFixed(1)}`).join(', ')}], peak RSS ${baseRss.toFixed(0)} MB (process tree ${baseTree.toFixed(0)} MB), COG ${await mb(baseOut)} MB`,
    );
    console.log(
      `ratio ours/baseline: ${(oursS / baseS).toFixed(2)}x whole run (Node start and validation included), ${(oursCog / baseS).toFixed(2)}x warp/COG step alone (target <= 1.0x); peak RSS ours - baseline: ${(oursRss - baseRss).toFixed(0)} MB largest process, ${(oursTree - baseTree).toFixed(0)} MB process tree (target <= 100 MB); load average now ${os
        .loadavg()
        .map((l) => l.toFixed(1))
        .join(' ')}`,
    );
  }
} finally {
  await rm(dir, { recursive: true, force: true });
}
