import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { TaskError } from '@coremachine/core-machine';
import gdal from 'gdal-async';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { checkCog } from './cog-check.ts';
import { cogCreationOptions, createCog } from './cog.ts';
import { describeRaster } from './describe.ts';
import * as fx from './fixtures.ts';
import { readTiffStructure } from './tiff-structure.ts';

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'cm-cog-test-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('checkCog', () => {
  it('accepts a COG from createCog, reporting tile size and overview levels', async () => {
    const out = path.join(dir, 'dem_cog.tif');
    const r = await createCog({
      source: fx.demUtm(dir, 1200),
      destination: out,
      workDir: dir,
      sourceCrs: 'EPSG:32633',
      targetCrs: 'native',
      compression: 'lerc_deflate',
      overviewResampling: 'average',
      reprojectResampling: 'bilinear',
    });
    expect(r.reprojected).toBe(false);
    const check = await checkCog(out);
    expect(check).toMatchObject({
      valid: true,
      errors: [],
      warnings: [],
      tileSize: [512, 512],
      overviewLevels: [2, 4],
    });
    // IFDs first, then data from the smallest overview to the full resolution
    expect(check.ifdOffsets).toEqual([...check.ifdOffsets].sort((a, b) => a - b));
    expect(check.dataOffsets).toEqual([...check.dataOffsets].sort((a, b) => b - a));
    const info = await describeRaster(out);
    expect(info).toMatchObject({
      crs: 'EPSG:32633',
      shape: [1200, 1200],
      nodata: fx.DEM_NODATA,
      block_size: [512, 512],
      overview_levels: [2, 4],
      compression: 'LERC_DEFLATE',
    });
    expect(info.bounds).toEqual([500000, 5000000 - 36000, 536000, 5000000]);
  });

  it('rejects a stripped GeoTIFF larger than 512 and one whose overviews were added after the data', async () => {
    const src = gdal.open(fx.categorical(dir, 1100));
    const stripped = path.join(dir, 'stripped.tif');
    gdal.translate(stripped, src, ['-of', 'GTiff']).close();
    const s = await checkCog(stripped);
    expect(s.valid).toBe(false);
    expect(s.errors).toContain('The file is greater than 512xH or Wx512, but is not tiled');
    expect(s.tileSize).toBeNull();

    const late = path.join(dir, 'late_overviews.tif');
    const ds = gdal.translate(late, src, ['-of', 'GTiff', '-co', 'TILED=YES']);
    ds.buildOverviews('NEAREST', [2, 4]);
    ds.close();
    src.close();
    const l = await checkCog(late);
    expect(l.valid).toBe(false);
    expect(l.overviewLevels).toEqual([2, 4]);
    expect(l.errors.join('\n')).toMatch(/should be after/);
  });

  it('reads BigTIFF structure', async () => {
    const big = path.join(dir, 'big.tif');
    gdal.translate(big, gdal.open(fx.rgb3857(dir)), ['-of', 'COG', '-co', 'BIGTIFF=YES']).close();
    const s = await readTiffStructure(big);
    expect(s.bigTiff).toBe(true);
    expect(s.ifds[0]).toMatchObject({ width: 256, height: 256, tileWidth: 512, tileHeight: 512 });
    expect((await checkCog(big)).valid).toBe(true);
  });

  it('reports a file that is not a TIFF', async () => {
    const r = await checkCog(await fx.textAsTif(dir));
    expect(r.valid).toBe(false);
    expect(r.errors[0]).toMatch(/not a TIFF/);
  });
});

describe('createCog', () => {
  it('reprojects UTM to EPSG:4326 and keeps nodata', async () => {
    const out = path.join(dir, 'dem4326.tif');
    const r = await createCog({
      source: fx.demUtm(dir),
      destination: out,
      workDir: dir,
      sourceCrs: 'EPSG:32633',
      targetCrs: 'EPSG:4326',
      compression: 'deflate',
      overviewResampling: 'average',
      reprojectResampling: 'bilinear',
    });
    expect(r.reprojected).toBe(true);
    expect(r.creationOptions).toEqual([
      'COMPRESS=DEFLATE',
      'BLOCKSIZE=512',
      'OVERVIEW_RESAMPLING=AVERAGE',
      'NUM_THREADS=ALL_CPUS',
      'BIGTIFF=IF_SAFER',
      'PREDICTOR=YES',
    ]);
    const info = await describeRaster(out);
    expect(info.crs).toBe('EPSG:4326');
    expect(info.nodata).toBe(fx.DEM_NODATA);
    // 500000 E in zone 33 is the central meridian, 15° E
    expect(info.bounds[0]).toBeCloseTo(15, 1);
    expect(info.bounds[3]).toBeCloseTo(45.17, 1);
  });

  it('refuses a compression the data cannot take, permanently', async () => {
    const err = await createCog({
      source: fx.demUtm(dir),
      destination: path.join(dir, 'x.tif'),
      workDir: dir,
      sourceCrs: 'EPSG:32633',
      targetCrs: 'native',
      compression: 'webp',
      overviewResampling: 'average',
      reprojectResampling: 'bilinear',
    }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(TaskError);
    expect(err).toMatchObject({ code: 'COMPRESSION_UNSUPPORTED', permanent: true });
  });

  it('passes JPEG quality as QUALITY (the COG driver option name)', () => {
    expect(cogCreationOptions({ compression: 'jpeg', quality: 85, overviewResampling: 'cubic' })).toContain(
      'QUALITY=85',
    );
    expect(
      cogCreationOptions({ compression: 'lerc', quality: 85, overviewResampling: 'cubic' }).some((o) =>
        o.startsWith('QUALITY'),
      ),
    ).toBe(false);
  });
});

/** Pids of the processes below this one (children of every thread). */
async function childPids(): Promise<number[]> {
  const { readdir, readFile } = await import('node:fs/promises');
  const out: number[] = [];
  for (const t of await readdir(`/proc/${process.pid}/task`)) {
    const kids = await readFile(`/proc/${process.pid}/task/${t}/children`, 'utf8').catch(() => '');
    out.push(...kids.split(' ').filter(Boolean).map(Number));
  }
  return out;
}

describe('createCog and its abort signal', () => {
  it('stops GDAL mid-warp: rejects with the reason at once and no GDAL program runs on', async () => {
    const source = fx.demUtm(dir, 4000);
    const controller = new AbortController();
    const reason = new Error('cancelled by the test');
    let lastProgress = 0;
    const work = createCog({
      source,
      destination: path.join(dir, 'aborted.tif'),
      workDir: dir,
      sourceCrs: 'EPSG:32633',
      targetCrs: 'EPSG:3857',
      compression: 'deflate',
      overviewResampling: 'average',
      reprojectResampling: 'cubic',
      signal: controller.signal,
      onProgress: (f) => (lastProgress = f),
    }).then(
      () => 'completed',
      (e: unknown) => e,
    );
    // Abort once gdalwarp is at work (a child of this process).
    for (let i = 0; i < 200 && (await childPids()).length === 0; i++) await new Promise((r) => setTimeout(r, 25));
    expect((await childPids()).length).toBeGreaterThan(0);
    const t0 = performance.now();
    controller.abort(reason);
    expect(await work).toBe(reason);
    expect(performance.now() - t0).toBeLessThan(1_000);
    expect(await childPids()).toEqual([]);
    expect(lastProgress).toBeLessThan(0.5); // still warping: the COG driver never started
  });

  it('does not start when already aborted', async () => {
    const reason = new Error('gone');
    const err = await createCog({
      source: fx.demUtm(dir),
      destination: path.join(dir, 'never.tif'),
      workDir: dir,
      sourceCrs: 'EPSG:32633',
      targetCrs: 'EPSG:4326',
      compression: 'deflate',
      overviewResampling: 'average',
      reprojectResampling: 'bilinear',
      signal: AbortSignal.abort(reason),
    }).catch((e: unknown) => e);
    expect(err).toBe(reason);
  });

  it("reports a GDAL program's failure as a classified error naming the file, with no temporary path", async () => {
    // A source the opener accepts but gdalwarp cannot reproject: a target CRS PROJ has no
    // operation to (a geocentric CRS for a 2D raster warp).
    const err = await createCog({
      source: fx.demUtm(dir),
      label: 'bronze/dem.tif',
      destination: path.join(dir, 'bad.tif'),
      workDir: path.join(dir),
      sourceCrs: 'EPSG:32633',
      targetCrs: 'EPSG:4978',
      compression: 'deflate',
      overviewResampling: 'average',
      reprojectResampling: 'bilinear',
    }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(TaskError);
    const message = (err as TaskError).message;
    expect(message).toContain('bronze/dem.tif');
    expect(message).not.toContain(dir);
    expect(message).not.toMatch(/ERROR \d+:/);
  });
});
