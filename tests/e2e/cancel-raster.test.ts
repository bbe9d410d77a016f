import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createApp, parseEnv, type App } from '@coremachine/server';
import { createStorage, storageConfigFromEnv } from '@coremachine/storage';
import { dropSchemas, uniqueSchema } from '@coremachine/test-kit';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sleep, until } from './fault-helpers.ts';
import { SERVER_DIR, startTs } from './helpers.ts';

/** Pids of the live processes below `pid`, recursively (children of every thread). */
function descendants(pid: number): number[] {
  const read = (f: string) => {
    try {
      return readFileSync(f, 'utf8');
    } catch {
      return '';
    }
  };
  const out: number[] = [];
  const tasks = ((): string[] => {
    try {
      return readdirSync(`/proc/${pid}/task`);
    } catch {
      return []; // gone
    }
  })();
  for (const t of tasks) {
    for (const k of read(`/proc/${pid}/task/${t}/children`).split(' ').filter(Boolean)) {
      out.push(Number(k), ...descendants(Number(k)));
    }
  }
  return out;
}

/** GDAL programs (`gdalwarp`, `gdal_translate`) live below `pid` (tsx's esbuild is not one). */
function gdalBelow(pid: number): string[] {
  return descendants(pid).flatMap((p) => {
    try {
      const name = readFileSync(`/proc/${p}/comm`, 'utf8').trim();
      return /^gdal/.test(name) ? [name] : [];
    } catch {
      return [];
    }
  });
}

/** Every file and folder under `dir`, as paths relative to it. */
function entries(dir: string): string[] {
  if (!existsSync(dir)) return [];
  return readdirSync(dir, { recursive: true, encoding: 'utf8' });
}

// A process_raster job cancelled while its COG stage is reprojecting a 5,000² RGB raster (a
// stage of several seconds) in a real worker process against Azurite: the GDAL work stops,
// the task settles cancelled within 2 s (the engine would otherwise give the handler 5 s
// before settling without it), never completed; the worker's temporary files are gone and no
// COG blob appears, not even once the work would have finished.
describe('cancel of a running process_raster COG stage', () => {
  const ledger = uniqueSchema('cmcr');
  const stac = uniqueSchema('stac');
  const geo = uniqueSchema('geo');
  const prefix = `cancel-raster-${Date.now()}`;
  const output = `cr${Date.now().toString(36)}`;
  const dir = mkdtempSync(join(tmpdir(), 'cm-cancel-raster-'));
  const workerTmp = join(dir, 'worker-tmp');
  const storage = createStorage(storageConfigFromEnv());
  const schemaEnv = { CM_SCHEMA: ledger, CM_STAC_SCHEMA: stac, CM_GEO_SCHEMAS: geo, CM_LOG_LEVEL: 'error' };
  let app: App;
  let worker: Awaited<ReturnType<typeof startTs>>;

  beforeAll(async () => {
    app = await createApp({ env: parseEnv({ ...schemaEnv, CM_ROLE: 'api', CM_API_PORT: '0' }) });
    mkdirSync(workerTmp, { recursive: true });
    worker = await startTs(join(SERVER_DIR, 'src/main.ts'), [], /CoreMachine worker ready/, {
      env: {
        ...schemaEnv,
        CM_ROLE: 'worker',
        CM_WORKER_JOB_TYPES: 'process_raster',
        // The test's Azurite is already up; the worker's temporary folder holds only its own work.
        CM_EMBEDDED_AZURITE: 'false',
        TMPDIR: workerTmp,
      },
    });
    // 5,000 x 5,000 x 3 Byte in Web Mercator: the warp to EPSG:4326 and the JPEG COG take seconds.
    const src = join(dir, 'big.tif');
    execFileSync('gdal_create', [
      ...['-of', 'GTiff', '-outsize', '5000', '5000', '-bands', '3', '-ot', 'Byte'],
      ...['-burn', '60', '-burn', '120', '-burn', '180', '-co', 'TILED=YES', '-a_srs', 'EPSG:3857'],
      ...['-a_ullr', '1000000', '2000000', '1050000', '1950000', src],
    ]);
    await storage.uploadFile('bronze', `${prefix}/big.tif`, src);
  }, 120_000);

  afterAll(async () => {
    worker?.child.kill('SIGKILL');
    await app?.close();
    await storage.delete('bronze', `${prefix}/big.tif`).catch(() => false);
    await storage.deleteContainer(output).catch(() => false);
    const { default: pg } = await import('pg');
    const pool = new pg.Pool({
      connectionString: process.env['DATABASE_URL'] ?? 'postgres://postgres@127.0.0.1:5432/coremachine',
      max: 1,
    });
    await pool.query(`DROP SCHEMA IF EXISTS "${geo}" CASCADE; DROP SCHEMA IF EXISTS "${stac}" CASCADE`);
    await pool.end();
    await dropSchemas(ledger);
    rmSync(dir, { recursive: true, force: true });
  });

  it('stops the GDAL work, settles cancelled within 2 s and leaves no temporary file or blob', async () => {
    const workerPid = worker.child.pid!;
    const { jobId } = await app.machine.submit('process_raster', {
      blob_name: `${prefix}/big.tif`,
      output_container: output,
    });
    const cogTask = async () =>
      (await app.machine.listTasks(jobId, { limit: 100 })).items.find((t) => t.stageName === 'create_cog');
    // The COG stage is running and GDAL is at work in it (gdalwarp or gdal_translate under the worker).
    await until(async () => (await cogTask())?.status === 'processing', 90_000, 'the COG stage running');
    const gdalAtWork = await until(
      async () => gdalBelow(workerPid)[0],
      30_000,
      'a GDAL program working for the COG stage',
    );
    await sleep(1_000);
    expect(gdalBelow(workerPid)).toContain(gdalAtWork); // still at work: the cancel lands mid-stage

    const t0 = Date.now();
    expect((await app.machine.cancel(jobId)).status).toBe('cancelled');
    const settled = await until(
      async () => {
        const t = await cogTask();
        return t && t.status !== 'processing' ? t : null;
      },
      20_000,
      'the COG task settled',
    );
    const landed = Date.now() - t0;
    if (process.env['CM_PRINT_TIMINGS']) console.log(`cancel → COG task settled ${settled.status}: ${landed} ms`);
    expect(settled.status).toBe('cancelled');
    expect(landed).toBeLessThan(2_000);
    expect(gdalBelow(workerPid)).toEqual([]); // no GDAL program runs on

    // Whatever the stopped work would have produced: give it the time it needed to finish.
    await sleep(8_000);
    expect((await cogTask())!.status).toBe('cancelled');
    expect((await app.machine.getJob(jobId))!.status).toBe('cancelled');
    // The COG's temporary folder (coremachine-cog-*) is gone; the worker's own root for task
    // folders may stay (empty). (tsx keeps its cache in the same TMPDIR.)
    const left = entries(workerTmp).filter((e) => e.startsWith('coremachine-'));
    expect(left.filter((e) => !/^coremachine-tasks(\/\d+-[\w-]+)?$/.test(e))).toEqual([]);
    const blobs: string[] = [];
    if (await storage.containerExists(output)) for await (const b of storage.list(output)) blobs.push(b.name);
    expect(blobs).toEqual([]);
  }, 180_000);
});
