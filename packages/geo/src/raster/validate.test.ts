import { execFileSync } from 'node:child_process';
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { TaskError } from '@coremachine/core-machine';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as fx from './fixtures.ts';
import { validateRaster, type ValidateRasterOptions } from './validate.ts';

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'cm-validate-test-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

const run = (file: string, extra: Partial<ValidateRasterOptions> = {}) =>
  validateRaster({ path: file, sourceBlob: path.basename(file), containerName: 'local', ...extra });

async function codeOf(p: Promise<unknown>): Promise<string> {
  try {
    await p;
  } catch (err) {
    expect(err).toBeInstanceOf(TaskError);
    expect((err as TaskError).permanent).toBe(true);
    return (err as TaskError).code;
  }
  throw new Error('expected a TaskError');
}

describe('validateRaster', () => {
  it('detects RGB in EPSG:3857 with VERY_HIGH confidence and JPEG settings', async () => {
    const r = await run(fx.rgb3857(dir));
    expect(r.source_crs).toBe('EPSG:3857');
    expect(r.crs_source).toBe('file_metadata');
    expect(r.shape).toEqual([256, 256]);
    expect(r.band_count).toBe(3);
    expect(r.dtype).toBe('Byte');
    expect(r.bounds).toEqual([1113194, 6446275 - 25600, 1113194 + 25600, 6446275]);
    expect(r.bounds_4326[0]).toBeCloseTo(10, 2);
    expect(r.raster_type).toMatchObject({
      detected_type: 'rgb',
      confidence: 'VERY_HIGH',
      type_source: 'auto_detected',
    });
    expect(r.raster_type.optimal_cog_settings).toEqual({
      compression: 'jpeg',
      jpeg_quality: 85,
      overview_resampling: 'cubic',
      reproject_resampling: 'cubic',
    });
    expect(r.size_mb).toBeGreaterThan(0.18);
    expect(r.size_mb).toBeLessThan(0.3);
    expect(r.bit_depth_check.efficient).toBe(true);
  });

  it('detects RGBA from an alpha-like band 4', async () => {
    const r = await run(fx.rgba4326(dir));
    expect(r.raster_type.detected_type).toBe('rgba');
    expect(r.raster_type.confidence).toBe('HIGH');
    expect(r.raster_type.optimal_cog_settings.compression).toBe('webp');
  });

  it('detects a float32 DEM in UTM with nodata, HIGH confidence (smooth)', async () => {
    const r = await run(fx.demUtm(dir));
    expect(r.source_crs).toBe('EPSG:32633');
    expect(r.nodata).toBe(fx.DEM_NODATA);
    expect(r.dtype).toBe('Float32');
    expect(r.raster_type).toMatchObject({ detected_type: 'dem', confidence: 'HIGH' });
    expect(r.raster_type.optimal_cog_settings).toMatchObject({
      compression: 'lerc_deflate',
      overview_resampling: 'average',
      reproject_resampling: 'bilinear',
    });
    expect(r.bit_depth_check.efficient).toBe(true);
  });

  it('detects categorical data with a colour table', async () => {
    const r = await run(fx.categorical(dir));
    expect(r.raster_type).toMatchObject({ detected_type: 'categorical', confidence: 'VERY_HIGH' });
    expect(r.raster_type.evidence).toContain('band 1 has a colour table');
    expect(r.raster_type.optimal_cog_settings).toMatchObject({
      compression: 'deflate',
      overview_resampling: 'mode',
      reproject_resampling: 'nearest',
    });
  });

  it('detects 6-band uint16 as multispectral', async () => {
    const r = await run(fx.multispectral6(dir));
    expect(r.band_count).toBe(6);
    expect(r.dtype).toBe('UInt16');
    expect(r.raster_type).toMatchObject({ detected_type: 'multispectral', confidence: 'MEDIUM' });
  });

  it('flags float64 as a CRITICAL bit-depth violation, failing only in strict mode', async () => {
    const file = fx.float64(dir);
    const r = await run(file);
    expect(r.bit_depth_check).toMatchObject({
      efficient: false,
      current_dtype: 'Float64',
      recommended_dtype: 'Float32',
    });
    expect(r.warnings.find((w) => w.code === 'BIT_DEPTH_POLICY_VIOLATION')?.severity).toBe('CRITICAL');
    expect(r.raster_type.detected_type).toBe('dem');
    expect(await codeOf(run(file, { strictMode: true }))).toBe('BIT_DEPTH_POLICY_VIOLATION');
  });

  it('fails CRS_MISSING without input_crs and uses input_crs with a MEDIUM warning', async () => {
    const file = fx.noCrs(dir);
    expect(await codeOf(run(file))).toBe('CRS_MISSING');
    const r = await run(file, { inputCrs: 'EPSG:32633' });
    expect(r.source_crs).toBe('EPSG:32633');
    expect(r.crs_source).toBe('user_override_required');
    expect(r.warnings).toContainEqual(expect.objectContaining({ severity: 'MEDIUM', code: 'CRS_FROM_USER' }));
  });

  it('compares CRSs semantically: a PROJ string equal to the file CRS confirms it', async () => {
    const file = fx.demUtm(dir);
    const r = await run(file, { inputCrs: '+proj=utm +zone=33 +datum=WGS84 +units=m +no_defs' });
    expect(r.crs_source).toBe('user_confirmed');
    expect(await codeOf(run(file, { inputCrs: 'EPSG:32634' }))).toBe('CRS_MISMATCH');
  });

  it('computes bounds of a rotated geotransform from its corners and warns', async () => {
    const r = await run(fx.rotated(dir));
    expect(r.rotated).toBe(true);
    const a = (10 * Math.PI) / 180;
    // corners: (0,0)->(500000,5000000); (256,0)->x+=2560cos, y+=2560sin; (0,256)->x+=2560sin, y-=2560cos
    expect(r.bounds[0]).toBeCloseTo(500000, 6);
    expect(r.bounds[2]).toBeCloseTo(500000 + 2560 * Math.cos(a) + 2560 * Math.sin(a), 6);
    expect(r.bounds[1]).toBeCloseTo(5000000 - 2560 * Math.cos(a), 6);
    expect(r.bounds[3]).toBeCloseTo(5000000 + 2560 * Math.sin(a), 6);
    expect(r.warnings.map((w) => w.code)).toContain('ROTATED_GEOTRANSFORM');
    expect(r.raster_type.detected_type).toBe('rgb');
  });

  it('rejects a raster_type contradicting the detected type', async () => {
    expect(await codeOf(run(fx.demUtm(dir), { rasterType: 'rgb' }))).toBe('RASTER_TYPE_MISMATCH');
    const ok = await run(fx.demUtm(dir), { rasterType: 'dem' });
    expect(ok.raster_type.type_source).toBe('user_confirmed');
  });

  it('maps unreadable inputs to permanent codes', async () => {
    expect(await codeOf(run(await fx.textAsTif(dir)))).toBe('NOT_A_RASTER');
    expect(await codeOf(run(await fx.truncatedTiff(dir)))).toBe('FILE_UNREADABLE');
    expect(await codeOf(run(path.join(dir, 'missing.tif')))).toBe('BLOB_NOT_FOUND');
  });
});

describe('validateRaster on a local engineering CRS', () => {
  it('fails permanently with CRS_NOT_GEOREFERENCED naming the file and the CRS and suggesting input_crs', async () => {
    const file = fx.localCrs(dir);
    let error: TaskError | undefined;
    try {
      await run(file);
    } catch (err) {
      error = err as TaskError;
    }
    expect(error).toBeInstanceOf(TaskError);
    expect(error).toMatchObject({ code: 'CRS_NOT_GEOREFERENCED', permanent: true });
    expect(error!.message).toContain('local/local_crs.tif');
    expect(error!.message).toContain('ENGCRS["Cartesian (Meter)"]');
    expect(error!.message).toContain('input_crs');
    expect(error!.message).not.toContain(dir);
    expect(error!.detail).toMatchObject({
      file: 'local/local_crs.tif',
      crs: expect.stringMatching(/^ENGCRS\["Cartesian \(Meter\)"/),
    });
    expect(JSON.stringify(error!.detail)).not.toMatch(/\.ts:\d+|\n\s+at /);
  });

  it('takes input_crs instead of the local CRS, with a warning, and places the raster on the Earth', async () => {
    const r = await run(fx.localCrs(dir), { inputCrs: 'EPSG:32633' });
    expect(r.source_crs).toBe('EPSG:32633');
    expect(r.crs_source).toBe('user_override_required');
    expect(r.warnings.map((w) => w.code)).toContain('CRS_FROM_USER');
    // (500000, 5000000) in UTM 33N is 15°E, 45.1°N.
    expect(r.bounds_4326[0]).toBeCloseTo(15, 3);
    expect(r.bounds_4326[3]).toBeCloseTo(45.1535, 3);
  });
});

describe('validateRaster bit-depth advice never narrows below the data', () => {
  it('leaves Float32 fractions (0.01..0.99, 99 distinct values) alone', async () => {
    const r = await run(fx.fractions(dir));
    expect(r.bit_depth_check).toMatchObject({ efficient: true, current_dtype: 'Float32' });
    expect(r.bit_depth_check.recommended_dtype).toBeUndefined();
    expect(r.warnings.filter((w) => w.code === 'BIT_DEPTH_INEFFICIENT')).toEqual([]);
  });

  it('recommends Int16, not Byte, for an integer DEM of -1..88 whose -1 lies outside the sample', async () => {
    const r = await run(fx.integerDemWithNegative(dir));
    expect(r.bit_depth_check).toMatchObject({ efficient: false, recommended_dtype: 'Int16' });
    expect(r.bit_depth_check.reason).toContain('-1..88');
    const warning = r.warnings.find((w) => w.code === 'BIT_DEPTH_INEFFICIENT');
    expect(warning?.severity).toBe('MEDIUM');
  });
});

describe('validateRaster, more types', () => {
  it('detects a 4-band raster with a continuous band 4 as nir (MEDIUM)', async () => {
    const r = await run(fx.nir4(dir));
    expect(r.raster_type).toMatchObject({ detected_type: 'nir', confidence: 'MEDIUM' });
    expect(r.raster_type.optimal_cog_settings.compression).toBe('deflate');
  });

  it("reports a NaN nodata as 'NaN' (JSON has no NaN) and ignores NaN pixels in the sample", async () => {
    const r = await run(fx.demNanNodata(dir));
    expect(r.nodata).toBe('NaN');
    expect(JSON.parse(JSON.stringify(r)).nodata).toBe('NaN');
    expect(r.raster_type).toMatchObject({ detected_type: 'dem', confidence: 'HIGH' });
    expect(r.raster_type.evidence.find((e) => e.startsWith('values'))).toMatch(/^values 25\d\.\d+\.\.40\d\.\d+$/);
  });
});

describe('validateRaster, georeferencing', () => {
  it('an image with neither a geotransform nor GCPs fails RASTER_NO_GEOTRANSFORM; with its world file beside it, it validates', async () => {
    const png = path.join(dir, 'photo.png');
    execFileSync('gdal_translate', ['-q', '-of', 'PNG', '-co', 'WORLDFILE=YES', fx.rgb3857(dir), png]);
    rmSync(`${png}.aux.xml`, { force: true });
    const wld = path.join(dir, 'photo.wld');
    const world = readFileSync(wld);
    rmSync(wld);
    // Before: validated with a HIGH warning, then process_raster wrote a COG that could not be placed.
    await expect(run(png, { inputCrs: 'EPSG:3857' })).rejects.toMatchObject({
      code: 'RASTER_NO_GEOTRANSFORM',
      permanent: true,
      message: expect.stringContaining('local/photo.png is not georeferenced'),
    });
    writeFileSync(wld, world);
    const r = await run(png, { inputCrs: 'EPSG:3857' });
    expect(r.source_crs).toBe('EPSG:3857');
    expect(r.bounds[2] - r.bounds[0]).toBeGreaterThan(0);
  });
});
