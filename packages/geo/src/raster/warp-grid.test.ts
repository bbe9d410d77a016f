import { execFile } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import gdal from 'gdal-async';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { footprintWgs84, outlineRing } from '../stac/footprint.ts';
import { buildRasterItem } from '../stac/raster-item.ts';
import { createCog } from './cog.ts';
import { planGrid } from './grid.ts';
import { validateRaster } from './validate.ts';
import { crossesAntimeridian, isNorthUp } from './warp-grid.ts';

const run = promisify(execFile);
let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'cm-warp-grid-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

/** A one-band Byte raster, values 10..209 everywhere (no nodata). */
function raster(name: string, crs: string, gt: number[], width: number, height: number): string {
  const file = path.join(dir, name);
  const ds = gdal.open(file, 'w', 'GTiff', width, height, 1, 'Byte');
  ds.srs = gdal.SpatialReference.fromUserInput(crs);
  ds.geoTransform = gt;
  const px = new Uint8Array(width * height);
  for (let i = 0; i < px.length; i++) px[i] = 10 + (i % 200);
  ds.bands.get(1).pixels.write(0, 0, width, height, px);
  ds.close();
  return file;
}

const cogOptions = async (source: string, destination: string, sourceCrs: string) => ({
  source,
  destination,
  workDir: await mkdtemp(path.join(dir, 'work-')),
  sourceCrs,
  targetCrs: 'EPSG:4326',
  compression: 'deflate' as const,
  overviewResampling: 'nearest' as const,
  reprojectResampling: 'nearest' as const,
});

describe('warp grids on real-world geometries', () => {
  // A 400 × 200 km scene at 1 km in UTM 60S, reaching from 178.9°E past the antimeridian to 177.3°W.
  const utm60 = () => raster('utm60.tif', 'EPSG:32760', [700000, 1000, 0, 8000000, 0, -1000], 400, 200);

  it('across the antimeridian: the scene keeps its extent and resolution (GDAL alone: 452 × 2 pixels over the globe)', async () => {
    const source = utm60();
    const ds = gdal.open(source);
    const target = gdal.SpatialReference.fromUserInput('EPSG:4326');
    expect(crossesAntimeridian(ds.geoTransform!, 400, 200, ds.srs!, target)).toBe(true);
    expect(gdal.suggestedWarpOutput({ src: ds, s_srs: ds.srs!, t_srs: target }).rasterSize).toEqual({ x: 452, y: 2 });
    ds.close();

    const { grid } = await planGrid([{ path: source, label: 'bronze/utm60.tif', crs: 'EPSG:32760' }], 'EPSG:4326');
    expect([grid.width, grid.height]).toEqual([408, 200]);
    expect(grid.geoTransform[0]).toBeCloseTo(178.8898, 3);
    expect(grid.geoTransform[1]).toBeCloseTo(0.009396, 5);

    const out = path.join(dir, 'utm60_cog.tif');
    await createCog(await cogOptions(source, out, 'EPSG:32760'));
    const cog = gdal.open(out);
    expect([cog.rasterSize.x, cog.rasterSize.y]).toEqual([408, 200]);
    expect(cog.geoTransform).toEqual(grid.geoTransform); // the single COG and the tiled plan agree
    // The pixels east of 180° are there: most of the grid holds data (the collar is the nodata 0).
    const px = cog.bands.get(1).pixels.read(0, 0, 408, 200) as Uint8Array;
    const east = px.filter((v, i) => v !== 0 && i % 408 > 120).length; // columns east of 180°
    expect(east).toBeGreaterThan(0.9 * 288 * 200);
    cog.close();
  });

  it('a bottom-up raster in the target CRS is warped north-up, not copied upside down', async () => {
    const source = raster('bottomup.tif', 'EPSG:4326', [10, 0.01, 0, 40, 0, 0.01], 200, 100);
    expect(isNorthUp([10, 0.01, 0, 40, 0, 0.01])).toBe(false);
    const out = path.join(dir, 'bottomup_cog.tif');
    const r = await createCog(await cogOptions(source, out, 'EPSG:4326'));
    expect(r.reprojected).toBe(true);
    const cog = gdal.open(out);
    expect(cog.geoTransform).toEqual([10, 0.01, 0, 41, 0, -0.01]);
    // The source's first row (south, y = 40) is the COG's last row.
    const src = gdal.open(source);
    const firstSrcRow = src.bands.get(1).pixels.read(0, 0, 200, 1);
    expect(cog.bands.get(1).pixels.read(0, 99, 200, 1)).toEqual(firstSrcRow);
    src.close();
    cog.close();
  });

  it('a polar stereographic footprint reaches the pole it encloses', async () => {
    // 2,000 km square centred on the South Pole: its edge is at 77°–81°S, the pole inside.
    const gt = [-1000000, 10000, 0, 1000000, 0, -10000];
    const srs = gdal.SpatialReference.fromUserInput('EPSG:3031');
    const { bbox } = footprintWgs84(outlineRing(gt, 200, 200), srs);
    expect(bbox[0]).toBe(-180);
    expect(bbox[2]).toBe(180);
    expect(bbox[1]).toBe(-90); // was -80.8: a search at the pole missed the scene
    expect(bbox[3]).toBeCloseTo(-77.04, 1);
    // The same edge in the north polar CRS reaches the North Pole, not the South.
    const north = footprintWgs84(outlineRing(gt, 200, 200), gdal.SpatialReference.fromUserInput('EPSG:3413')).bbox;
    expect(north[3]).toBe(90);
    expect(north[1]).toBeGreaterThan(0);
  });

  it('the grids match gdalwarp with CENTER_LONG=180 on the command line', async () => {
    const source = utm60();
    const ref = path.join(dir, 'utm60_ref.tif');
    await run('gdalwarp', ['-q', '-overwrite', '-t_srs', 'EPSG:4326', '--config', 'CENTER_LONG', '180', source, ref]);
    const { grid } = await planGrid([{ path: source, label: 'bronze/utm60.tif', crs: 'EPSG:32760' }], 'EPSG:4326');
    const r = gdal.open(ref);
    expect([grid.width, grid.height]).toEqual([r.rasterSize.x, r.rasterSize.y]);
    expect(grid.geoTransform).toEqual(r.geoTransform);
    r.close();
  });

  it('a raster georeferenced only by ground control points: validated, warped onto its grid, catalogued (was CRS_MISSING)', async () => {
    const plain = raster('gcp_plain.tif', 'EPSG:4326', [0, 1, 0, 0, 0, 1], 100, 100);
    const source = path.join(dir, 'gcps.tif');
    const gcp = (px: number, line: number, x: number, y: number) => ['-gcp', px, line, x, y].map(String);
    await run('gdal_translate', [
      '-q',
      '-a_srs',
      'EPSG:4326',
      ...gcp(0, 0, 10, 50),
      ...gcp(100, 0, 11, 50),
      ...gcp(0, 100, 10, 49),
      ...gcp(100, 100, 11, 49),
      plain,
      source,
    ]);
    const v = await validateRaster({ path: source, sourceBlob: 'gcps.tif', containerName: 'bronze' });
    expect(v).toMatchObject({ source_crs: 'EPSG:4326', bounds: [10, 49, 11, 50] });
    expect(v.warnings.map((w) => w.code)).toContain('GCP_GEOREFERENCED');

    const out = path.join(dir, 'gcps_cog.tif');
    const r = await createCog(await cogOptions(source, out, 'EPSG:4326'));
    expect(r.reprojected).toBe(true);
    const cog = gdal.open(out);
    expect(cog.geoTransform).toEqual([10, 0.01, 0, 50, 0, -0.01]);
    expect(cog.srs?.getAuthorityCode(null)).toBe('4326');
    cog.close();

    const item = await buildRasterItem(
      {
        gdalPath: source,
        href: 'http://example.test/bronze/gcps.tif',
        size: 1,
        lastModified: new Date(0),
        label: 'bronze/gcps.tif',
      },
      { id: 'gcps', collection: 'dev', statistics: false },
    );
    expect(item.bbox).toEqual([10, 49, 11, 50]);
    expect(item.properties['proj:code']).toBe('EPSG:4326');
    expect(item.properties).not.toHaveProperty('proj:transform');
  });

  it("a polar scene into EPSG:4326 keeps the data's resolution (GDAL alone: 200 × 200 px of 10 km became 283 × 10 px of 1.27°)", async () => {
    const source = raster('polar.tif', 'EPSG:3031', [-1000000, 10000, 0, 1000000, 0, -10000], 200, 200);
    const ds = gdal.open(source);
    const target = gdal.SpatialReference.fromUserInput('EPSG:4326');
    expect(gdal.suggestedWarpOutput({ src: ds, s_srs: ds.srs!, t_srs: target }).rasterSize).toEqual({ x: 283, y: 10 });
    ds.close();
    const { grid } = await planGrid([{ path: source, label: 'bronze/polar.tif', crs: 'EPSG:3031' }], 'EPSG:4326');
    // 10 km is ~0.09° of latitude: GDAL's extent (-180..180, 89.8°S..77.0°S) at that step.
    expect(grid.geoTransform[1]).toBeCloseTo(0.09, 1);
    expect(grid.width).toBeGreaterThan(3500);
    expect(grid.height).toBeGreaterThan(120);
    const out = path.join(dir, 'polar_cog.tif');
    await createCog(await cogOptions(source, out, 'EPSG:3031'));
    const cog = gdal.open(out);
    expect([cog.rasterSize.x, cog.rasterSize.y]).toEqual([grid.width, grid.height]);
    expect(cog.geoTransform![0]).toBeCloseTo(grid.geoTransform[0], 9);
    expect(cog.geoTransform![1]).toBeCloseTo(grid.geoTransform[1], 9);
    cog.close();
  });

  it('a mid-latitude UTM scene keeps exactly the grid gdalwarp picks', async () => {
    const source = raster('utm33.tif', 'EPSG:32633', [500000, 30, 0, 5000000, 0, -30], 300, 200);
    const ref = path.join(dir, 'utm33_ref.tif');
    await run('gdalwarp', ['-q', '-overwrite', '-t_srs', 'EPSG:4326', source, ref]);
    const { grid } = await planGrid([{ path: source, label: 'bronze/utm33.tif', crs: 'EPSG:32633' }], 'EPSG:4326');
    const r = gdal.open(ref);
    expect([grid.width, grid.height]).toEqual([r.rasterSize.x, r.rasterSize.y]);
    expect(grid.geoTransform).toEqual(r.geoTransform);
    r.close();
  });
});
