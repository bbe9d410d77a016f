import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { checkCog } from '@coremachine/geo/raster';
import { tiledConfig, tmpPrefix } from '@coremachine/job-process-raster';
import { createStorage, storageConfigFromEnv } from '@coremachine/storage';
import { createTestMachine, type TestMachine } from '@coremachine/test-kit';
import gdal from 'gdal-async';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import collection from '../src/index.ts';
import { mosaicTile, NODATA, TILE } from './fixtures.ts';

const run = promisify(execFile);
const storage = createStorage(storageConfigFromEnv());
const prefix = `test-mosaic-${randomBytes(4).toString('hex')}`;
const GDAL_VALIDATOR = '/usr/lib/python3/dist-packages/osgeo_utils/samples/validate_cloud_optimized_geotiff.py';
let dir: string;
let tm: TestMachine;
const tiles: string[] = [];

function pixels(b: gdal.RasterBand): Buffer {
  return Buffer.from(b.pixels.read(0, 0, b.size.x, b.size.y).buffer);
}

beforeAll(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'cm-mosaic-'));
  await storage.ensureContainer('bronze');
  for (const [c, r] of [
    [0, 0],
    [1, 0],
    [0, 1],
    [1, 1],
  ] as const) {
    const local = mosaicTile(dir, c, r);
    tiles.push(local);
    await storage.uploadFile('bronze', `${prefix}/tiles/${path.basename(local)}`, local);
  }
  await storage.uploadFile('bronze', `${prefix}/odd/tile_1_1_b2.tif`, mosaicTile(dir, 1, 1, 2));
  tm = await createTestMachine({ plugins: [collection] });
});
afterAll(async () => {
  await tm?.close();
  for (const c of ['bronze', 'silver'])
    for await (const b of storage.list(c, { prefix: `${prefix}/` })) await storage.delete(c, b.name);
  await rm(dir, { recursive: true, force: true });
});

describe('process_raster_collection', () => {
  it('4 adjacent inputs by prefix = gdalbuildvrt + gdal_translate -of COG, pixel for pixel', async () => {
    const job = await tm.submitAndWait('process_raster_collection', {
      prefix: `${prefix}/tiles/`,
      output_blob_name: `${prefix}/mosaic_cog.tif`,
      window_size: 192,
    });
    expect(job.status, JSON.stringify(job.error)).toBe('completed');
    // 600 x 400 pixels in 192-pixel windows: 4 x 3.
    expect(job.stages.map((s) => [s.name, s.status, s.total])).toEqual([
      ['inspect', 'completed', 1],
      ['windows', 'completed', 12],
      ['create_cog', 'completed', 1],
    ]);
    const result = job.result as any;
    expect(result).toMatchObject({ input_count: 4, tiling: { windows: 12, window_size: 192 } });
    expect(result.cog).toMatchObject({
      cog_container: 'silver',
      cog_blob: `${prefix}/mosaic_cog.tif`,
      cog_url: storage.blobUrl('silver', `${prefix}/mosaic_cog.tif`),
      reprojection_performed: false,
      target_crs: 'EPSG:4326',
      shape: [400, 600],
      band_count: 1,
      dtype: 'Float32',
      nodata: NODATA,
      compression: 'deflate',
    });
    const ours = path.join(dir, 'ours.tif');
    await storage.downloadToFile('silver', result.cog.cog_blob, ours);
    expect((await checkCog(ours)).errors).toEqual([]);
    const { stdout } = await run('/usr/bin/python3', [GDAL_VALIDATOR, ours]);
    expect(stdout).toContain('is a valid cloud optimized GeoTIFF');

    const vrt = path.join(dir, 'ref.vrt');
    const ref = path.join(dir, 'ref.tif');
    await run('gdalbuildvrt', ['-q', vrt, ...tiles]);
    await run('gdal_translate', [
      '-q',
      '-of',
      'COG',
      ...['COMPRESS=DEFLATE', 'BLOCKSIZE=512', 'OVERVIEW_RESAMPLING=AVERAGE', 'PREDICTOR=YES'].flatMap((o) => [
        '-co',
        o,
      ]),
      vrt,
      ref,
    ]);
    const a = gdal.open(ours);
    const b = gdal.open(ref);
    expect(a.rasterSize).toEqual({ x: 2 * TILE.width, y: 2 * TILE.height });
    expect(a.rasterSize).toEqual(b.rasterSize);
    a.geoTransform!.forEach((v, i) => expect(v).toBeCloseTo(b.geoTransform![i]!, 12));
    expect(a.bands.get(1).noDataValue).toBe(NODATA);
    expect(pixels(a.bands.get(1)).equals(pixels(b.bands.get(1)))).toBe(true);
    expect(a.bands.get(1).overviews.count()).toBe(b.bands.get(1).overviews.count());
    expect(pixels(a.bands.get(1).overviews.get(0)).equals(pixels(b.bands.get(1).overviews.get(0)))).toBe(true);
    a.close();
    b.close();
    const left: string[] = [];
    for await (const x of storage.list(tiledConfig().tmpContainer, { prefix: tmpPrefix(job.type, job.id) }))
      left.push(x.name);
    expect(left).toEqual([]);
  }, 90_000);

  it("output 'tiles': COG tiles on the window grid holding the mosaic's pixels", async () => {
    const job = await tm.submitAndWait('process_raster_collection', {
      prefix: `${prefix}/tiles/`,
      output_blob_name: `${prefix}/set.tif`,
      output: 'tiles',
      window_size: 320,
    });
    expect(job.status, JSON.stringify(job.error)).toBe('completed');
    const r = job.result as any;
    expect(r.cog).toBeNull();
    // 600 x 400 pixels in 320-pixel tiles: 2 x 2; no STAC store on this machine.
    expect(r.tiles).toMatchObject({ tiles_prefix: `${prefix}/set_tiles/`, tile_count: 4, collection_id: null });
    const vrt = path.join(dir, 'all.vrt');
    await run('gdalbuildvrt', ['-q', vrt, ...tiles]);
    const ref = gdal.open(vrt);
    for (const t of r.tiles.tiles) {
      const file = path.join(dir, `set_${t.key}.tif`);
      await storage.downloadToFile('silver', t.blob, file);
      expect((await checkCog(file)).errors).toEqual([]);
      const ds = gdal.open(file);
      const [row, col] = [Number(t.key.slice(1, 5)), Number(t.key.slice(7))];
      const { x, y } = ds.rasterSize;
      const want = ref.bands.get(1).pixels.read(col * 320, row * 320, x, y);
      expect(Buffer.from(ds.bands.get(1).pixels.read(0, 0, x, y).buffer).equals(Buffer.from(want.buffer))).toBe(true);
      ds.close();
    }
    ref.close();
  }, 90_000);

  it('an input with another band count fails at once, naming the file', async () => {
    const job = await tm.submitAndWait('process_raster_collection', {
      blob_names: [`${prefix}/tiles/tile_0_0.tif`, `${prefix}/odd/tile_1_1_b2.tif`],
      output_blob_name: `${prefix}/odd_cog.tif`,
    });
    expect(job.status).toBe('failed');
    expect(job.error).toMatchObject({ code: 'RASTER_BAND_COUNT_MISMATCH', stage: 'inspect' });
    expect(job.error!.message).toContain(`bronze/${prefix}/odd/tile_1_1_b2.tif has 2 band(s)`);
    const [task] = await tm.tasks(job.id, { stage: 1 });
    expect(task!.attempts).toBe(1);
  }, 30_000);
});
