import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { checkCog, rasterFixtures as fx } from '@coremachine/geo/raster';
import { createStorage, storageConfigFromEnv } from '@coremachine/storage';
import { createTestMachine, type TestMachine } from '@coremachine/test-kit';
import gdal from 'gdal-async';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import processRaster, {
  runWindowTask,
  sweepTmp,
  tiledConfig,
  tmpPrefix,
  watchedJobs,
  windowTaskInput,
} from '../src/index.ts';

const run = promisify(execFile);
const storage = createStorage(storageConfigFromEnv());
const prefix = `test-tiled-${randomBytes(4).toString('hex')}`;
const GDAL_VALIDATOR = '/usr/lib/python3/dist-packages/osgeo_utils/samples/validate_cloud_optimized_geotiff.py';
const TMP = tiledConfig().tmpContainer;
let dir: string;
let tm: TestMachine;

async function upload(local: string, name = path.basename(local)): Promise<string> {
  const blob = `${prefix}/${name}`;
  await storage.uploadFile('bronze', blob, local);
  return blob;
}

/** Downloads the job's COG and checks it against our COG rules and GDAL's validator. */
async function fetchCog(job: { result: unknown }): Promise<{ ds: gdal.Dataset; cog: any }> {
  const cog = (job.result as any).cog;
  const file = path.join(dir, `${randomBytes(4).toString('hex')}_${path.basename(cog.cog_blob)}`);
  await storage.downloadToFile(cog.cog_container, cog.cog_blob, file);
  expect((await checkCog(file)).errors).toEqual([]);
  const { stdout } = await run('/usr/bin/python3', [GDAL_VALIDATOR, file]);
  expect(stdout).toContain('is a valid cloud optimized GeoTIFF');
  return { ds: gdal.open(file), cog };
}

async function tmpBlobs(jobId: string): Promise<string[]> {
  if (!(await storage.containerExists(TMP))) return [];
  const names: string[] = [];
  for await (const b of storage.list(TMP, { prefix: tmpPrefix('process_raster', jobId) })) names.push(b.name);
  return names;
}

async function until<T>(fn: () => Promise<T | false | null | undefined>, ms: number, what: string): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`${what} not reached within ${ms} ms`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

function read(ds: gdal.Dataset, band = 1): Float64Array {
  const b = ds.bands.get(band);
  return Float64Array.from(b.pixels.read(0, 0, b.size.x, b.size.y) as ArrayLike<number>);
}

beforeAll(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'cm-tiled-job-'));
  await storage.ensureContainer('bronze');
  tm = await createTestMachine({ plugins: [processRaster] });
});
afterAll(async () => {
  await tm?.close();
  for (const c of ['bronze', 'silver'])
    for await (const b of storage.list(c, { prefix: `${prefix}/` })) await storage.delete(c, b.name);
  await rm(dir, { recursive: true, force: true });
});

describe('process_raster, tiled path', () => {
  it('DEM UTM -> 4326 in 12 windows equals the single-task COG within the warp approximation; windows deleted', async () => {
    const local = fx.demUtm(dir, 600);
    const singleBlob = await upload(local, 'dem_single.tif');
    const tiledBlob = await upload(local, 'dem_tiled.tif');
    const single = await tm.submitAndWait('process_raster', { blob_name: singleBlob });
    const tiled = await tm.submitAndWait('process_raster', {
      blob_name: tiledBlob,
      tiled_threshold_mb: 0,
      window_size: 192,
    });
    expect(single.status).toBe('completed');
    expect(tiled.status).toBe('completed');
    expect(single.stages.map((s) => [s.name, s.total])).toEqual([
      ['validate', 1],
      ['windows', 0],
      ['create_cog', 1],
    ]);
    expect((single.result as any).tiling).toBeNull();
    // 694 x 492 pixels in 192-pixel windows: 4 columns x 3 rows.
    expect(tiled.stages.map((s) => [s.name, s.status, s.total, s.completed])).toEqual([
      ['validate', 'completed', 1, 1],
      ['windows', 'completed', 12, 12],
      ['create_cog', 'completed', 1, 1],
    ]);
    expect((tiled.result as any).tiling).toMatchObject({ windows: 12, window_size: 192, reused: 0 });
    expect((tiled.result as any).total_tasks_executed).toBe(14);
    const s = await fetchCog(single);
    const t = await fetchCog(tiled);
    expect(t.cog).toMatchObject({
      reprojection_performed: true,
      target_crs: 'EPSG:4326',
      compression: 'lerc_deflate',
      nodata: fx.DEM_NODATA,
      shape: s.cog.shape,
      overview_levels: s.cog.overview_levels,
      collar: s.cog.collar,
    });
    // The same grid; the pixel size gdalwarp derives from -te/-ts differs in the 16th digit.
    t.ds.geoTransform!.forEach((v, i) => expect(v).toBeCloseTo(s.ds.geoTransform![i]!, 12));
    const [w, h] = [s.ds.rasterSize.x, s.ds.rasterSize.y];
    const a = read(s.ds);
    const b = read(t.ds);
    // gdalwarp's approximate transformer (error 0.125 px) interpolates per chunk, and the chunks
    // of a whole-raster warp are not the windows': a pixel may sample up to ~0.125 px elsewhere.
    // Tolerance per pixel: that shift times the local gradient of the single-task COG.
    let interior = 0;
    let seam = 0;
    const bad: string[] = [];
    let nodataMismatch = 0;
    for (let y = 1; y < h - 1; y++)
      for (let x = 1; x < w - 1; x++) {
        const i = y * w + x;
        if ((a[i] === fx.DEM_NODATA) !== (b[i] === fx.DEM_NODATA)) nodataMismatch++;
        if (a[i] === fx.DEM_NODATA || b[i] === fx.DEM_NODATA) continue;
        const nb = [a[i - 1]!, a[i + 1]!, a[i - w]!, a[i + w]!];
        if (nb.includes(fx.DEM_NODATA)) continue;
        const grad = Math.abs(nb[1]! - nb[0]!) / 2 + Math.abs(nb[3]! - nb[2]!) / 2;
        const tol = 0.15 * grad + 1e-3;
        const atSeam = x % 192 < 2 || x % 192 > 189 || y % 192 < 2 || y % 192 > 189;
        if (atSeam) seam++;
        else interior++;
        if (Math.abs(a[i]! - b[i]!) > tol && bad.length < 5) bad.push(`${x},${y}: ${a[i]} vs ${b[i]} (tol ${tol})`);
      }
    expect(bad).toEqual([]);
    expect(nodataMismatch).toBeLessThanOrEqual(2);
    expect(interior).toBeGreaterThan(300_000);
    expect(seam).toBeGreaterThan(5_000);
    expect(await tmpBlobs(tiled.id)).toEqual([]);
    s.ds.close();
    t.ds.close();

    // A window run again (a re-run of the job, a retry after its upload) reuses the blob: same bytes, no work.
    const [win] = await tm.tasks(tiled.id, { stage: 2 });
    const input = windowTaskInput.parse(win!.input);
    const ctx = {
      services: tm.machine.services,
      signal: new AbortController().signal,
      attempt: 1,
      jobId: tiled.id,
      jobType: 'process_raster',
      tempDir: () => mkdtemp(path.join(dir, 'win-')),
      log: { info() {}, warn() {}, error() {} },
      db: tm.pool,
      ledger: { connectionString: '', schema: tm.schema },
    };
    const fresh = await runWindowTask(input, ctx);
    const reused = await runWindowTask(input, ctx);
    expect(fresh).toMatchObject({ key: win!.key, reused: false });
    expect(reused).toMatchObject({ key: win!.key, reused: true, bytes: fresh.bytes });
    expect(await tmpBlobs(tiled.id)).toEqual([input.tmp_blob]);
    await storage.delete(TMP, input.tmp_blob);
  }, 60_000);

  it("'native' categorical with colour table: tiled equals single pixel for pixel, overviews too", async () => {
    const local = fx.categorical(dir, 1100);
    const singleBlob = await upload(local, 'cat_single.tif');
    const tiledBlob = await upload(local, 'cat_tiled.tif');
    const single = await tm.submitAndWait('process_raster', { blob_name: singleBlob, target_crs: 'native' });
    const tiled = await tm.submitAndWait('process_raster', {
      blob_name: tiledBlob,
      target_crs: 'native',
      tiled_threshold_mb: 0,
      window_size: 320,
    });
    expect(tiled.status).toBe('completed');
    expect(tiled.stages[1]).toMatchObject({ name: 'windows', total: 16, completed: 16 });
    const s = await fetchCog(single);
    const t = await fetchCog(tiled);
    expect(t.cog).toMatchObject({ reprojection_performed: false, compression: 'deflate', nodata: 0 });
    expect(t.ds.geoTransform).toEqual(s.ds.geoTransform);
    expect(t.ds.srs!.isSame(s.ds.srs!)).toBe(true);
    expect(t.ds.bands.get(1).colorTable!.get(3)).toMatchObject({ c1: 84, c2: 171, c3: 180 });
    expect(Buffer.from(read(t.ds).buffer).equals(Buffer.from(read(s.ds).buffer))).toBe(true);
    const so = s.ds.bands.get(1).overviews.get(0);
    const to = t.ds.bands.get(1).overviews.get(0);
    expect(Buffer.from(to.pixels.read(0, 0, to.size.x, to.size.y).buffer)).toEqual(
      Buffer.from(so.pixels.read(0, 0, so.size.x, so.size.y).buffer),
    );
    expect(await tmpBlobs(tiled.id)).toEqual([]);
    s.ds.close();
    t.ds.close();
  }, 60_000);

  it("class names from a PAM sidecar: the tiled COG and every tile carry the single COG's names in a .aux.xml", async () => {
    // Classes 1..3 in stripes; the names (and the colour table) only in the source's .aux.xml.
    const local = path.join(dir, 'classes.tif');
    const ds = gdal.open(local, 'w', 'GTiff', 300, 200, 1, 'Byte');
    ds.srs = gdal.SpatialReference.fromUserInput('EPSG:32633');
    ds.geoTransform = [300000, 10, 0, 5002000, 0, -10];
    ds.bands.get(1).pixels.write(
      0,
      0,
      300,
      200,
      new Uint8Array(300 * 200).map((_, i) => 1 + Math.floor((i % 300) / 100)),
    );
    ds.close();
    const names = ['', 'Water', 'Forest', 'Urban area'];
    const sidecar = `<PAMDataset><PAMRasterBand band="1">
  <CategoryNames>${names.map((n) => `<Category>${n}</Category>`).join('')}</CategoryNames>
  <ColorInterp>Palette</ColorInterp>
  <ColorTable><Entry c1="0" c2="0" c3="0" c4="255"/><Entry c1="0" c2="0" c3="255" c4="255"/><Entry c1="0" c2="128" c3="0" c4="255"/><Entry c1="200" c2="0" c3="0" c4="255"/></ColorTable>
</PAMRasterBand></PAMDataset>`;
    const withSidecar = async (name: string) => {
      const blob = await upload(local, name);
      await storage.uploadData('bronze', `${blob}.aux.xml`, sidecar);
      return blob;
    };
    /** The category names of band 1 as a client reads them: the blob and its .aux.xml. */
    const namesOf = async (container: string, blob: string) => {
      const file = path.join(dir, `${randomBytes(4).toString('hex')}_${path.basename(blob)}`);
      await storage.downloadToFile(container, blob, file);
      await storage.downloadToFile(container, `${blob}.aux.xml`, `${file}.aux.xml`);
      const got = gdal.open(file);
      const band = got.bands.get(1);
      band.getMetadata(); // the GeoTIFF driver reads the .aux.xml on the first metadata read
      const out = band.categoryNames.slice(0, names.length);
      got.close();
      return out;
    };
    const single = await tm.submitAndWait('process_raster', { blob_name: await withSidecar('classes_single.tif') });
    const tiled = await tm.submitAndWait('process_raster', {
      blob_name: await withSidecar('classes_tiled.tif'),
      tiled_threshold_mb: 0,
      window_size: 128,
    });
    const tiles = await tm.submitAndWait('process_raster', {
      blob_name: await withSidecar('classes_tiles.tif'),
      output: 'tiles',
      window_size: 128,
    });
    for (const job of [single, tiled, tiles]) expect(job.status, JSON.stringify(job.error)).toBe('completed');
    expect((tiled.result as any).tiling.windows).toBeGreaterThan(1);
    const s = (single.result as any).cog;
    const t = (tiled.result as any).cog;
    expect(s.sidecars).toEqual([`${s.cog_blob}.aux.xml`]);
    expect(t.sidecars).toEqual([`${t.cog_blob}.aux.xml`]);
    expect(await namesOf(s.cog_container, s.cog_blob)).toEqual(names);
    expect(await namesOf(t.cog_container, t.cog_blob)).toEqual(names);
    const set = (tiles.result as any).tiles;
    expect(set.tile_count).toBeGreaterThan(1);
    for (const tile of set.tiles) expect(await namesOf(set.tiles_container, tile.blob)).toEqual(names);
    expect(await tmpBlobs(tiled.id)).toEqual([]);
  }, 60_000);

  it('RGB EPSG:3857 -> JPEG: the tiled COG carries the internal mask like the single one', async () => {
    const local = fx.rgb3857(dir);
    const single = await tm.submitAndWait('process_raster', { blob_name: await upload(local, 'rgb_single.tif') });
    const tiled = await tm.submitAndWait('process_raster', {
      blob_name: await upload(local, 'rgb_tiled.tif'),
      tiled_threshold_mb: 0,
      window_size: 128,
    });
    expect(tiled.status).toBe('completed');
    const s = await fetchCog(single);
    const t = await fetchCog(tiled);
    expect(t.cog).toMatchObject({ compression: 'jpeg', band_count: s.cog.band_count, collar: s.cog.collar });
    expect(t.ds.getMetadata('IMAGE_STRUCTURE').COMPRESSION).toBe('YCbCr JPEG');
    expect(t.ds.bands.get(1).getMaskFlags()).toBe(s.ds.bands.get(1).getMaskFlags());
    const a = read(s.ds);
    const b = read(t.ds);
    let sum = 0;
    for (let i = 0; i < a.length; i++) sum += Math.abs(a[i]! - b[i]!);
    expect(sum / a.length).toBeLessThan(2);
    s.ds.close();
    t.ds.close();
  }, 60_000);

  it('a job that fails mid-way (source deleted after some windows) leaves no window behind', async () => {
    const blob = await upload(fx.demUtm(dir, 600), 'dem_fail.tif');
    const { jobId } = await tm.submit('process_raster', { blob_name: blob, tiled_threshold_mb: 0, window_size: 64 });
    await until(
      async () => (await tm.tasks(jobId, { stage: 2 })).filter((t) => t.status === 'completed').length >= 3,
      30_000,
      'three windows written',
    );
    expect((await tmpBlobs(jobId)).length).toBeGreaterThanOrEqual(3);
    await storage.delete('bronze', blob);
    const job = await tm.waitFor(jobId);
    expect(job.status).toBe('failed');
    // 694 x 492 pixels in 64-pixel windows: 11 x 8.
    expect(job.stages[1]).toMatchObject({ name: 'windows', total: 88 });
    expect(job.error).toMatchObject({ stage: 'windows' });
    await until(async () => (await tmpBlobs(jobId)).length === 0, 10_000, 'temporary windows deleted');
  }, 60_000);

  it('a cancelled job leaves no window behind', async () => {
    const blob = await upload(fx.demUtm(dir, 600), 'dem_cancel.tif');
    const { jobId } = await tm.submit('process_raster', { blob_name: blob, tiled_threshold_mb: 0, window_size: 64 });
    await until(
      async () => (await tm.tasks(jobId, { stage: 2 })).filter((t) => t.status === 'completed').length >= 3,
      30_000,
      'three windows written',
    );
    expect((await tmpBlobs(jobId)).length).toBeGreaterThanOrEqual(3);
    await tm.machine.cancel(jobId);
    const job = await tm.waitFor(jobId);
    expect(job.status).toBe('cancelled');
    // The window running when the cancel lands deletes them (aborted, or finding its job
    // cancelled when it ends); a cancel between two windows, the workers that wrote windows
    // watching the job (the next test).
    await until(async () => (await tmpBlobs(jobId)).length === 0, 5_000, 'windows deleted');
    expect(await tmpBlobs(jobId)).toEqual([]);
  }, 60_000);

  it('a cancel between two windows (none running, none to run) removes the written windows within seconds; the sweep takes what a dead worker left', async () => {
    // A machine of its own, whose worker stops once windows are written: when the cancel lands
    // no window runs, and none will run again to see it.
    const own = await createTestMachine({ plugins: [processRaster] });
    try {
      const blob = await upload(fx.demUtm(dir, 600), 'dem_cancel_between.tif');
      const { jobId } = await own.submit('process_raster', {
        blob_name: blob,
        tiled_threshold_mb: 0,
        window_size: 64,
      });
      await until(
        async () => (await own.tasks(jobId, { stage: 2 })).filter((t) => t.status === 'completed').length >= 3,
        30_000,
        'three windows written',
      );
      await own.worker!.stop();
      const tasks = await own.tasks(jobId, { stage: 2 });
      expect(tasks.filter((t) => t.status === 'processing')).toEqual([]);
      const written = tasks.filter((t) => t.status === 'completed').length;
      expect((await tmpBlobs(jobId)).length).toBeGreaterThanOrEqual(written);
      expect(watchedJobs()).toContain(`${own.schema}/${jobId}`);
      await own.machine.cancel(jobId);
      const t0 = Date.now();
      await until(async () => (await tmpBlobs(jobId)).length === 0, 5_000, 'windows deleted');
      expect(Date.now() - t0).toBeLessThan(5_000);
      await until(async () => !watchedJobs().includes(`${own.schema}/${jobId}`), 5_000, 'job no longer watched');

      // A worker that died holding windows: the sweep of the next tiled plan deletes those of
      // ended jobs of this ledger, and leaves prefixes of job ids the ledger does not know.
      const left = `${tmpPrefix('process_raster', jobId)}r0000_c0000.tif`;
      const stranger = `${tmpPrefix('process_raster', 'f'.repeat(64))}r0000_c0000.tif`;
      await storage.uploadData(TMP, left, 'x');
      await storage.uploadData(TMP, stranger, 'x');
      const ctx = {
        db: own.pool,
        ledger: { connectionString: '', schema: own.schema },
        services: own.machine.services,
      };
      const swept = await sweepTmp({ ...ctx, log: { info() {}, warn() {}, error() {} } }, 'process_raster');
      expect(swept).toEqual([tmpPrefix('process_raster', jobId)]);
      expect(await tmpBlobs(jobId)).toEqual([]);
      expect((await storage.stat(TMP, stranger)).exists).toBe(true);
      await storage.delete(TMP, stranger);
    } finally {
      await own.close();
    }
  }, 60_000);
});
