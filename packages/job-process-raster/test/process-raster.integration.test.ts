import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { checkCog, rasterFixtures as fx } from '@coremachine/geo/raster';
import { createStorage, storageConfigFromEnv } from '@coremachine/storage';
import { createTestMachine, type TestMachine } from '@coremachine/test-kit';
import gdal from 'gdal-async';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import processRaster from '../src/index.ts';

const run = promisify(execFile);
const storage = createStorage(storageConfigFromEnv());
const prefix = `test-process-${randomBytes(4).toString('hex')}`;
const GDAL_VALIDATOR = '/usr/lib/python3/dist-packages/osgeo_utils/samples/validate_cloud_optimized_geotiff.py';
let dir: string;
let tm: TestMachine;

async function upload(file: string | Promise<string>): Promise<{ local: string; blob: string }> {
  const local = await file;
  const blob = `${prefix}/${path.basename(local)}`;
  await storage.uploadFile('bronze', blob, local);
  return { local, blob };
}

/** Downloads the job's COG and checks it: our COG rules, GDAL's validator script, CRS. */
async function fetchCog(job: { result: unknown }): Promise<{ file: string; ds: gdal.Dataset; cog: any }> {
  const cog = (job.result as any).cog;
  const file = path.join(dir, `${randomBytes(4).toString('hex')}_${path.basename(cog.cog_blob)}`);
  await storage.downloadToFile(cog.cog_container, cog.cog_blob, file);
  const check = await checkCog(file);
  expect(check.errors).toEqual([]);
  const { stdout } = await run('/usr/bin/python3', [GDAL_VALIDATOR, file]);
  expect(stdout).toContain('is a valid cloud optimized GeoTIFF');
  return { file, ds: gdal.open(file), cog };
}

/** Corner coordinates of `ds` within half a pixel of `gdalwarp` with the same CRS and resampling. */
async function expectCornersMatchGdalwarp(ds: gdal.Dataset, source: string, targetCrs: string, resampling: string) {
  const ref = path.join(dir, `ref_${randomBytes(4).toString('hex')}.tif`);
  await run('gdalwarp', ['-q', '-t_srs', targetCrs, '-r', resampling, source, ref]);
  const r = gdal.open(ref);
  const [ax, aw, , ay, , ah] = ds.geoTransform!;
  const [bx, bw, , by, , bh] = r.geoTransform!;
  const half = Math.abs(bw!) / 2;
  const halfY = Math.abs(bh!) / 2;
  expect(ds.rasterSize).toEqual(r.rasterSize);
  expect(Math.abs(ax! - bx!)).toBeLessThanOrEqual(half);
  expect(Math.abs(ay! - by!)).toBeLessThanOrEqual(halfY);
  expect(Math.abs(ax! + aw! * ds.rasterSize.x - (bx! + bw! * r.rasterSize.x))).toBeLessThanOrEqual(half);
  expect(Math.abs(ay! + ah! * ds.rasterSize.y - (by! + bh! * r.rasterSize.y))).toBeLessThanOrEqual(halfY);
  r.close();
}

function epsgOf(ds: gdal.Dataset): string {
  const srs = ds.srs!.clone();
  srs.autoIdentifyEPSG();
  return `${srs.getAuthorityName(null)}:${srs.getAuthorityCode(null)}`;
}

beforeAll(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'cm-process-job-'));
  await storage.ensureContainer('bronze');
  tm = await createTestMachine({ plugins: [processRaster] });
});
afterAll(async () => {
  await tm?.close();
  for (const c of ['bronze', 'silver'])
    for await (const b of storage.list(c, { prefix: `${prefix}/` })) await storage.delete(c, b.name);
  await rm(dir, { recursive: true, force: true });
});

describe('process_raster job', () => {
  it('RGB EPSG:3857 -> JPEG COG in EPSG:4326 matching gdalwarp', async () => {
    const { local, blob } = await upload(fx.rgb3857(dir));
    const job = await tm.submitAndWait('process_raster', { blob_name: blob });
    expect(job.status).toBe('completed');
    expect(job.stages.map((s) => [s.name, s.status, s.total, s.completed])).toEqual([
      ['validate', 'completed', 1, 1],
      ['windows', 'completed', 0, 0],
      ['create_cog', 'completed', 1, 1],
    ]);
    const { ds, cog } = await fetchCog(job);
    expect(cog).toMatchObject({
      cog_blob: blob.replace(/\.tif$/, '_cog.tif'),
      cog_container: 'silver',
      source_blob: blob,
      source_container: 'bronze',
      reprojection_performed: true,
      source_crs: 'EPSG:3857',
      target_crs: 'EPSG:4326',
      compression: 'jpeg',
      jpeg_quality: 85,
      tile_size: [512, 512],
      overview_levels: [],
      overview_resampling: 'cubic',
      reproject_resampling: 'cubic',
      raster_type: 'rgb',
      band_count: 3,
      dtype: 'Byte',
    });
    expect(cog.cog_url).toBe(storage.blobUrl('silver', cog.cog_blob));
    expect(cog.bounds_4326[0]).toBeCloseTo(10, 1);
    expect(epsgOf(ds)).toBe('EPSG:4326');
    expect(ds.getMetadata('IMAGE_STRUCTURE').COMPRESSION).toBe('YCbCr JPEG');
    await expectCornersMatchGdalwarp(ds, local, 'EPSG:4326', 'cubic');
    expect((job.result as any).validation).toMatchObject({
      source_crs: 'EPSG:3857',
      raster_type: 'rgb',
      confidence: 'VERY_HIGH',
      bit_depth_efficient: true,
    });
    expect((job.result as any).tasks_by_status).toEqual({ completed: 2, failed: 0 });
    expect(JSON.stringify(job)).not.toMatch(/sig=|sv=|AccountKey/);
    ds.close();
  });

  it('float32 DEM in UTM with nodata -> LERC_DEFLATE COG in 4326 with overviews, nodata kept', async () => {
    const { local, blob } = await upload(fx.demUtm(dir, 1200));
    const job = await tm.submitAndWait('process_raster', { blob_name: blob });
    expect(job.status).toBe('completed');
    const { ds, cog } = await fetchCog(job);
    expect(cog).toMatchObject({
      raster_type: 'dem',
      compression: 'lerc_deflate',
      overview_resampling: 'average',
      reproject_resampling: 'bilinear',
      nodata: fx.DEM_NODATA,
      dtype: 'Float32',
      tile_size: [512, 512],
    });
    expect(cog.overview_levels).toEqual([2, 4]);
    expect(ds.bands.get(1).overviews.count()).toBe(2);
    expect(ds.bands.get(1).noDataValue).toBe(fx.DEM_NODATA);
    expect(ds.getMetadata('IMAGE_STRUCTURE').COMPRESSION).toBe('LERC_DEFLATE');
    expect(epsgOf(ds)).toBe('EPSG:4326');
    await expectCornersMatchGdalwarp(ds, local, 'EPSG:4326', 'bilinear');
    // The nodata corner of the source (top-left 32x32 of 1200) stays nodata.
    const corner = ds.bands.get(1).pixels.read(0, 0, 8, 8);
    expect(Array.from(corner).filter((v) => v === fx.DEM_NODATA).length).toBeGreaterThan(0);
    ds.close();
  });

  it('categorical with colour table: nearest + mode keep the classes and the colour table', async () => {
    const { local, blob } = await upload(fx.categorical(dir, 1100));
    const job = await tm.submitAndWait('process_raster', { blob_name: blob });
    expect(job.status).toBe('completed');
    const { ds, cog } = await fetchCog(job);
    expect(cog).toMatchObject({
      raster_type: 'categorical',
      compression: 'deflate',
      overview_resampling: 'mode',
      reproject_resampling: 'nearest',
      nodata: 0,
    });
    const band = ds.bands.get(1);
    expect(band.colorTable).not.toBeNull();
    expect(band.colorTable!.get(3)).toMatchObject({ c1: 84, c2: 171, c3: 180 });
    await expectCornersMatchGdalwarp(ds, local, 'EPSG:4326', 'near');
    const allowed = new Set([0, ...fx.CATEGORICAL_CLASSES]);
    for (const b of [band, ...band.overviews]) {
      const values = new Set(b.pixels.read(0, 0, b.size.x, b.size.y));
      for (const v of values) expect(allowed.has(v)).toBe(true);
      expect([...values].filter((v) => v !== 0).sort()).toEqual(fx.CATEGORICAL_CLASSES);
    }
    ds.close();
  });

  it("'native' keeps the CRS and skips reprojection; 6-band uint16 with a zstd override to EPSG:3857", async () => {
    const { blob } = await upload(fx.multispectral6(dir));
    const native = await tm.submitAndWait('process_raster', { blob_name: blob, target_crs: 'native' });
    expect(native.status).toBe('completed');
    const n = await fetchCog(native);
    expect(n.cog).toMatchObject({
      reprojection_performed: false,
      target_crs: 'EPSG:32633',
      band_count: 6,
      dtype: 'UInt16',
      compression: 'deflate',
      raster_type: 'multispectral',
    });
    expect(n.cog.bounds).toEqual([400000, 4500000 - 2560, 402560, 4500000]);
    // pixel values unchanged without reprojection: band 6 = 1000 + 5*500 + 7x + 3y
    expect(n.ds.bands.get(6).pixels.get(10, 20)).toBe(1000 + 2500 + 70 + 60);
    n.ds.close();
    const merc = await tm.submitAndWait('process_raster', {
      blob_name: blob,
      target_crs: 'EPSG:3857',
      compression: 'zstd',
    });
    expect(merc.status).toBe('completed');
    const m = await fetchCog(merc);
    expect(m.cog).toMatchObject({
      reprojection_performed: true,
      target_crs: 'EPSG:3857',
      compression: 'zstd',
      cog_blob: n.cog.cog_blob,
    });
    expect(m.ds.getMetadata('IMAGE_STRUCTURE').COMPRESSION).toBe('ZSTD');
    expect(epsgOf(m.ds)).toBe('EPSG:3857');
    m.ds.close();
  });

  it('RGBA -> WebP; no-CRS raster with input_crs; rotated geotransform warped north-up', async () => {
    const rgba = await upload(fx.rgba4326(dir));
    const a = await tm.submitAndWait('process_raster', { blob_name: rgba.blob });
    expect(a.status).toBe('completed');
    const ac = await fetchCog(a);
    expect(ac.cog).toMatchObject({
      raster_type: 'rgba',
      compression: 'webp',
      reprojection_performed: false,
      band_count: 4,
    });
    expect(ac.ds.getMetadata('IMAGE_STRUCTURE').COMPRESSION).toBe('WEBP');
    ac.ds.close();

    const nocrs = await upload(fx.noCrs(dir));
    const b = await tm.submitAndWait('process_raster', { blob_name: nocrs.blob, input_crs: 'EPSG:32633' });
    expect(b.status).toBe('completed');
    const bc = await fetchCog(b);
    expect(bc.cog).toMatchObject({ source_crs: 'EPSG:32633', target_crs: 'EPSG:4326', reprojection_performed: true });
    expect(epsgOf(bc.ds)).toBe('EPSG:4326');
    bc.ds.close();

    const rot = await upload(fx.rotated(dir));
    const c = await tm.submitAndWait('process_raster', { blob_name: rot.blob, target_crs: 'native' });
    expect(c.status).toBe('completed');
    const cc = await fetchCog(c);
    expect(cc.cog.reprojection_performed).toBe(true);
    const gt = cc.ds.geoTransform!;
    expect([gt[2], gt[4]]).toEqual([0, 0]);
    expect(epsgOf(cc.ds)).toBe('EPSG:32633');
    await expectCornersMatchGdalwarp(cc.ds, rot.local, 'EPSG:32633', 'cubic');
    cc.ds.close();
  });

  it("DEM with NaN nodata: the COG keeps NaN as nodata (reported as 'NaN')", async () => {
    const { blob } = await upload(fx.demNanNodata(dir));
    const job = await tm.submitAndWait('process_raster', { blob_name: blob, target_crs: 'EPSG:3857' });
    expect(job.status).toBe('completed');
    const { ds, cog } = await fetchCog(job);
    expect(cog).toMatchObject({ nodata: 'NaN', raster_type: 'dem', target_crs: 'EPSG:3857' });
    expect(Number.isNaN(ds.bands.get(1).noDataValue)).toBe(true);
    ds.close();
  });

  it('a re-run writes the same blob name and leaves no temporary files', async () => {
    // A temporary folder of this test's own (os.tmpdir() follows TMPDIR): the other test files,
    // run at the same time in other processes, make and remove theirs in the shared one.
    const ownTmp = await mkdtemp(path.join(os.tmpdir(), 'cm-pr-tmpdir-'));
    const savedTmp = process.env['TMPDIR'];
    process.env['TMPDIR'] = ownTmp;
    try {
      await rerunLeavesNothing(ownTmp);
    } finally {
      if (savedTmp === undefined) delete process.env['TMPDIR'];
      else process.env['TMPDIR'] = savedTmp;
      await rm(ownTmp, { recursive: true, force: true });
    }
  });

  async function rerunLeavesNothing(tmp: string) {
    expect(os.tmpdir()).toBe(tmp);
    const before = (await readdir(tmp)).filter((f) => f.startsWith('coremachine-cog-'));
    const { blob } = await upload(fx.rgb3857(dir));
    const first = await tm.submitAndWait('process_raster', { blob_name: blob, jpeg_quality: 70 });
    const again = await tm.submit('process_raster', { blob_name: blob, jpeg_quality: 70 });
    expect(again).toMatchObject({ jobId: first.id, idempotent: true });
    const second = await tm.submitAndWait('process_raster', { blob_name: blob, jpeg_quality: 60 });
    expect(second.status).toBe('completed');
    expect((second.result as any).cog.cog_blob).toBe((first.result as any).cog.cog_blob);
    expect((second.result as any).cog.jpeg_quality).toBe(60);
    const names: string[] = [];
    for await (const b of storage.list('silver', { prefix: `${prefix}/rgb_3857` })) names.push(b.name);
    expect(names).toEqual([`${prefix}/rgb_3857_cog.tif`]);
    const after = (await readdir(tmp)).filter((f) => f.startsWith('coremachine-cog-'));
    expect(after).toEqual(before);
  }

  it('fails at once (1 attempt) with permanent codes, in the right stage', async () => {
    const expectFailed = async (params: Record<string, unknown>, code: string, stage: string) => {
      const job = await tm.submitAndWait('process_raster', params);
      expect(job.status).toBe('failed');
      expect(job.error).toMatchObject({ code, stage });
      const tasks = await tm.tasks(job.id);
      const failed = tasks.filter((t) => t.status === 'failed');
      expect(failed.map((t) => [t.stageName, t.attempts])).toEqual([[stage, 1]]);
    };
    await expectFailed({ blob_name: (await upload(fx.noCrs(dir))).blob }, 'CRS_MISSING', 'validate');
    await expectFailed({ blob_name: (await upload(fx.textAsTif(dir))).blob }, 'NOT_A_RASTER', 'validate');
    await expectFailed({ blob_name: (await upload(fx.truncatedTiff(dir))).blob }, 'FILE_UNREADABLE', 'validate');
    await expectFailed({ blob_name: `${prefix}/missing.tif` }, 'BLOB_NOT_FOUND', 'validate');
    await expectFailed(
      { blob_name: (await upload(fx.demUtm(dir))).blob, compression: 'jpeg' },
      'COMPRESSION_UNSUPPORTED',
      'create_cog',
    );
  });

  it('rejects wrong parameters naming the field', async () => {
    const bad = async (params: unknown, field: string) => {
      const err = await tm.submit('process_raster', params).then(
        () => null,
        (e: unknown) => e,
      );
      expect(err).toBeTruthy();
      expect(String((err as Error).message) + JSON.stringify((err as any).issues ?? [])).toContain(field);
    };
    await bad({ blob_name: 'a.tif', target_crs: 'EPSG:0' }, 'target_crs');
    await bad({ blob_name: 'a.tif', compression: 'packbits' }, 'compression');
    await bad({ blob_name: 'a.tif', jpeg_quality: 101 }, 'jpeg_quality');
    await bad({ blob_name: 'a.tif', overview_resampling: 'Resampling.cubic' }, 'overview_resampling');
    await bad({ blob_name: 'a.tif', output_container: 'UPPER' }, 'output_container');
  });
});

describe('process_raster on a local engineering CRS', () => {
  it('fails at the validate task, attempt 1, with CRS_NOT_GEOREFERENCED naming the blob; nothing written', async () => {
    const { blob } = await upload(fx.localCrs(dir));
    const job = await tm.submitAndWait('process_raster', { blob_name: blob });
    expect(job.status).toBe('failed');
    expect(job.error?.code).toBe('CRS_NOT_GEOREFERENCED');
    expect(job.error?.message).toContain(`bronze/${blob}`);
    expect(job.error?.message).toContain('input_crs');
    const tasks = await tm.tasks(job.id);
    expect(tasks.map((t) => [t.key, t.status, t.attempts])).toEqual([['validate', 'failed', 1]]);
    expect(JSON.stringify([job.error, tasks[0]!.error])).not.toMatch(/\.ts:\d+|\/vsiaz\/|\/tmp\/|\n\s+at /);
    expect(await storage.stat('silver', blob.replace(/\.tif$/, '_cog.tif'))).toMatchObject({ exists: false });
  });

  it('with input_crs: a COG in EPSG:4326 placed by input_crs, its collar marked with a nodata value outside the data', async () => {
    const { blob } = await upload(fx.localCrs(dir));
    const job = await tm.submitAndWait('process_raster', { blob_name: blob, input_crs: 'EPSG:32633' });
    expect(job.status).toBe('completed');
    const { ds, cog } = await fetchCog(job);
    expect(cog).toMatchObject({ source_crs: 'EPSG:32633', target_crs: 'EPSG:4326', reprojection_performed: true });
    expect(cog.collar).toEqual({ mask: 'nodata', nodata: -9999 });
    expect(ds.bands.get(1).noDataValue).toBe(-9999);
    expect(cog.bounds_4326[0]).toBeCloseTo(15, 3);
    ds.close();
  });
});
