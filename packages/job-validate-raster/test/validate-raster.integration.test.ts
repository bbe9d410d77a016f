import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { rasterFixtures as fx } from '@coremachine/geo/raster';
import { createStorage, storageConfigFromEnv } from '@coremachine/storage';
import { createTestMachine, type TestMachine } from '@coremachine/test-kit';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import validateRaster from '../src/index.ts';

const storage = createStorage(storageConfigFromEnv());
const prefix = `test-validate-${randomBytes(4).toString('hex')}`;
let dir: string;
let tm: TestMachine;

async function upload(file: string | Promise<string>): Promise<string> {
  const local = await file;
  const blob = `${prefix}/${path.basename(local)}`;
  await storage.uploadFile('bronze', blob, local);
  return blob;
}

beforeAll(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'cm-validate-job-'));
  await storage.ensureContainer('bronze');
  tm = await createTestMachine({ plugins: [validateRaster] });
});
afterAll(async () => {
  await tm?.close();
  for await (const b of storage.list('bronze', { prefix: `${prefix}/` })) await storage.delete('bronze', b.name);
  await rm(dir, { recursive: true, force: true });
});

async function expectFailed(params: Record<string, unknown>, code: string) {
  const job = await tm.submitAndWait('validate_raster', params);
  expect(job.status).toBe('failed');
  expect(job.error?.code).toBe(code);
  const [task] = await tm.tasks(job.id);
  expect(task?.status).toBe('failed');
  expect(task?.attempts).toBe(1);
  return job;
}

describe('validate_raster job', () => {
  it('validates an RGB raster read through /vsiaz/ and reports the spec result shape', async () => {
    const blob = await upload(fx.rgb3857(dir));
    const job = await tm.submitAndWait('validate_raster', { blob_name: blob });
    expect(job.status).toBe('completed');
    expect(job.parameters).toMatchObject({ container_name: 'bronze', raster_type: 'auto', strict_mode: false });
    const r = job.result as any;
    expect(r).toMatchObject({
      job_type: 'validate_raster',
      blob_name: blob,
      container_name: 'bronze',
      validation_status: 'passed',
      tasks_executed: 1,
      task_status: 'completed',
    });
    expect(r.validation_result).toMatchObject({
      valid: true,
      source_blob: blob,
      container_name: 'bronze',
      source_crs: 'EPSG:3857',
      crs_source: 'file_metadata',
      shape: [256, 256],
      band_count: 3,
      dtype: 'Byte',
      nodata: null,
      driver: 'GTiff',
      raster_type: {
        detected_type: 'rgb',
        confidence: 'VERY_HIGH',
        type_source: 'auto_detected',
        optimal_cog_settings: { compression: 'jpeg', jpeg_quality: 85 },
      },
      bit_depth_check: { efficient: true, current_dtype: 'Byte' },
    });
    // size_mb is the blob's real size: 3 x 256 x 256 bytes plus headers
    expect(r.validation_result.size_mb).toBeGreaterThan(0.18);
    expect(r.validation_result.size_mb).toBeLessThan(0.3);
    expect(JSON.stringify(job)).not.toMatch(/sig=|sv=|AccountKey/);
  });

  it('detects each raster type with its confidence', async () => {
    const cases: Array<[Promise<string> | string, string, string]> = [
      [fx.rgba4326(dir), 'rgba', 'HIGH'],
      [fx.demUtm(dir), 'dem', 'HIGH'],
      [fx.categorical(dir), 'categorical', 'VERY_HIGH'],
      [fx.multispectral6(dir), 'multispectral', 'MEDIUM'],
      [fx.float64(dir), 'dem', 'HIGH'],
      [fx.rotated(dir), 'rgb', 'VERY_HIGH'],
    ];
    const blobs = await Promise.all(cases.map(([f]) => upload(f)));
    const jobs = await Promise.all(blobs.map((blob_name) => tm.submitAndWait('validate_raster', { blob_name })));
    jobs.forEach((job, i) => {
      expect(job.status).toBe('completed');
      const rt = (job.result as any).validation_result.raster_type;
      expect([rt.detected_type, rt.confidence]).toEqual([cases[i]![1], cases[i]![2]]);
    });
    const dem = (jobs[1]!.result as any).validation_result;
    expect(dem).toMatchObject({ source_crs: 'EPSG:32633', nodata: fx.DEM_NODATA, dtype: 'Float32' });
    const f64 = (jobs[4]!.result as any).validation_result;
    expect(f64.bit_depth_check).toMatchObject({ efficient: false, current_dtype: 'Float64' });
    expect(f64.warnings).toContainEqual(
      expect.objectContaining({ severity: 'CRITICAL', code: 'BIT_DEPTH_POLICY_VIOLATION' }),
    );
  });

  it('takes input_crs for a raster without CRS, with a MEDIUM warning', async () => {
    const blob = await upload(fx.noCrs(dir));
    const job = await tm.submitAndWait('validate_raster', { blob_name: blob, input_crs: 'EPSG:32633' });
    expect(job.status).toBe('completed');
    const v = (job.result as any).validation_result;
    expect(v).toMatchObject({ source_crs: 'EPSG:32633', crs_source: 'user_override_required' });
    expect(v.warnings).toContainEqual(expect.objectContaining({ severity: 'MEDIUM', code: 'CRS_FROM_USER' }));
  });

  it('fails at once (1 attempt) with the right permanent code', async () => {
    const noCrs = await upload(fx.noCrs(dir));
    await expectFailed({ blob_name: noCrs }, 'CRS_MISSING');
    const dem = await upload(fx.demUtm(dir));
    await expectFailed({ blob_name: dem, input_crs: 'EPSG:4326' }, 'CRS_MISMATCH');
    await expectFailed({ blob_name: dem, raster_type: 'rgb' }, 'RASTER_TYPE_MISMATCH');
    await expectFailed({ blob_name: await upload(fx.float64(dir)), strict_mode: true }, 'BIT_DEPTH_POLICY_VIOLATION');
    await expectFailed({ blob_name: await upload(fx.textAsTif(dir)) }, 'NOT_A_RASTER');
    await expectFailed({ blob_name: await upload(fx.truncatedTiff(dir)) }, 'FILE_UNREADABLE');
    await expectFailed({ blob_name: `${prefix}/does-not-exist.tif` }, 'BLOB_NOT_FOUND');
    await expectFailed(
      { blob_name: 'x.tif', container_name: `nocontainer${randomBytes(3).toString('hex')}` },
      'BLOB_NOT_FOUND',
    );
  });

  it('regression: sees a blob uploaded after its folder was read, and the new content of an overwritten blob', async () => {
    const sub = `${prefix}/fresh`;
    await storage.uploadFile('bronze', `${sub}/first.tif`, fx.rgb3857(dir));
    expect((await tm.submitAndWait('validate_raster', { blob_name: `${sub}/first.tif` })).status).toBe('completed');
    // GDAL's /vsiaz/ listing cache used to hide this one ("not recognized as a supported file format")
    await storage.uploadFile('bronze', `${sub}/second.tif`, fx.demUtm(dir));
    const second = await tm.submitAndWait('validate_raster', { blob_name: `${sub}/second.tif` });
    expect((second.result as any).validation_result.raster_type.detected_type).toBe('dem');
    // ... and its content cache served the old bytes of an overwritten blob
    await storage.uploadFile('bronze', `${sub}/first.tif`, fx.categorical(dir));
    const again = await tm.submitAndWait('validate_raster', { blob_name: `${sub}/first.tif`, strict_mode: true });
    expect((again.result as any).validation_result.raster_type.detected_type).toBe('categorical');
  });

  it('rejects wrong parameters naming the field', async () => {
    const bad = async (params: unknown, field: string) => {
      const err = await tm.submit('validate_raster', params).then(
        () => null,
        (e: unknown) => e,
      );
      expect(err).toBeTruthy();
      expect(String((err as Error).message) + JSON.stringify((err as any).issues ?? [])).toContain(field);
    };
    await bad({}, 'blob_name');
    await bad({ blob_name: 'a.tif', strict_mode: 'yes' }, 'strict_mode');
    await bad({ blob_name: 'a.tif', raster_type: 'photo' }, 'raster_type');
    await bad({ blob_name: 'a.tif', input_crs: 'EPSG:99999999' }, 'input_crs');
    await bad({ blob_name: 'a.tif', container_name: 'Bad_Name' }, 'container_name');
    await bad({ blob_name: 'a.tif', extra: 1 }, 'extra');
  });
});

describe('validate_raster on a local engineering CRS', () => {
  it('fails at attempt 1 with CRS_NOT_GEOREFERENCED naming the blob and its CRS, no stack or server path stored', async () => {
    const blob = await upload(fx.localCrs(dir));
    const job = await expectFailed({ blob_name: blob }, 'CRS_NOT_GEOREFERENCED');
    expect(job.error?.message).toContain(`bronze/${blob}`);
    expect(job.error?.message).toContain('ENGCRS["Cartesian (Meter)"]');
    expect(job.error?.message).toContain('input_crs');
    const [task] = await tm.tasks(job.id);
    const stored = JSON.stringify([job.error, task?.error]);
    expect(stored).not.toMatch(/\.ts:\d+|\/vsiaz\/|\/tmp\/|\n\s+at /);
  });

  it('with input_crs the raster validates, placed where input_crs says', async () => {
    const blob = await upload(fx.localCrs(dir));
    const job = await tm.submitAndWait('validate_raster', { blob_name: blob, input_crs: 'EPSG:32633' });
    expect(job.status).toBe('completed');
    const v = (job.result as { validation_result: { source_crs: string; crs_source: string; bounds_4326: number[] } })
      .validation_result;
    expect(v).toMatchObject({ source_crs: 'EPSG:32633', crs_source: 'user_override_required' });
    expect(v.bounds_4326[0]).toBeCloseTo(15, 3);
  });
});
