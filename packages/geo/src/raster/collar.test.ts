import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import gdal from 'gdal-async';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildRasterItem } from '../stac/raster-item.ts';
import { createCog } from './cog.ts';
import type { Compression } from './cog-settings.ts';
import * as fx from './fixtures.ts';

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'cm-collar-test-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

const xy = (srs: gdal.SpatialReference) => gdal.SpatialReference.fromProj4(srs.toProj4());

/**
 * For every output pixel whose centre is clearly inside or clearly outside the source footprint
 * (more than 1.5 source pixels from its edge), whether the COG masks it: counts of masked
 * pixels inside and unmasked pixels outside (both must be 0), and of the pixels checked.
 */
function collarCounts(cogPath: string, sourcePath: string) {
  const src = gdal.open(sourcePath);
  const out = gdal.open(cogPath);
  const [sx0, sa, sb, sy0, sd, se] = src.geoTransform!;
  const det = sa! * se! - sb! * sd!;
  const { x: sw, y: sh } = src.rasterSize;
  const ct = new gdal.CoordinateTransformation(xy(out.srs!), xy(src.srs!));
  const [ox0, oa, , oy0, , oe] = out.geoTransform!;
  const { x: w, y: h } = out.rasterSize;
  const mask = out.bands.get(1).getMaskBand()!.pixels.read(0, 0, w, h) as Uint8Array;
  let maskedInside = 0;
  let unmaskedOutside = 0;
  let inside = 0;
  let outside = 0;
  for (let row = 0; row < h; row++) {
    for (let col = 0; col < w; col++) {
      const p = ct.transformPoint(ox0! + (col + 0.5) * oa!, oy0! + (row + 0.5) * oe!);
      const dx = p.x - sx0!;
      const dy = p.y - sy0!;
      const c = (se! * dx - sb! * dy) / det;
      const r = (-sd! * dx + sa! * dy) / det;
      const margin = 1.5;
      const valid = mask[row * w + col]! > 0;
      if (c > margin && c < sw - margin && r > margin && r < sh - margin) {
        inside++;
        if (!valid) maskedInside++;
      } else if (c < -margin || c > sw + margin || r < -margin || r > sh + margin) {
        outside++;
        if (valid) unmaskedOutside++;
      }
    }
  }
  src.close();
  out.close();
  return { inside, outside, maskedInside, unmaskedOutside };
}

async function reproject(source: string, compression: Compression, name: string) {
  const destination = path.join(dir, name);
  const made = await createCog({
    source,
    destination,
    workDir: await mkdtemp(path.join(dir, 'work-')),
    sourceCrs: 'EPSG:32633',
    targetCrs: 'EPSG:4326',
    compression,
    quality: 85,
    overviewResampling: 'average',
    reprojectResampling: 'bilinear',
  });
  return { destination, made };
}

describe('createCog marks the reprojection collar', () => {
  it.each([{ rotated: true }, { rotated: false }])(
    'single-band Float32 without nodata (rotated: $rotated): a nodata value outside the data, every collar pixel masked',
    async ({ rotated }) => {
      const source = fx.collarSource(dir, { bands: 1, rotated });
      const { destination, made } = await reproject(source, 'deflate', `dem_${rotated}_cog.tif`);
      expect(made.reprojected).toBe(true);
      expect(made.collar).toEqual({ mask: 'nodata', nodata: -9999 });
      const counts = collarCounts(destination, source);
      expect(counts.outside).toBeGreaterThan(rotated ? 1000 : 50);
      expect(counts.inside).toBeGreaterThan(10000);
      expect(counts).toMatchObject({ maskedInside: 0, unmaskedOutside: 0 });
      // Recorded in the STAC item too.
      const item = await buildRasterItem(
        { gdalPath: destination, href: 'http://x.test/c.tif', size: 1, lastModified: new Date(0) },
        { id: 'c', collection: 'cogs', statistics: false },
      );
      expect((item.assets.data!['raster:bands'] as Array<{ nodata?: number }>)[0]!.nodata).toBe(-9999);
    },
  );

  it.each([
    [true, 'jpeg', 'mask'],
    [false, 'jpeg', 'mask'],
    [true, 'deflate', 'alpha'],
  ] as const)(
    'RGB without nodata (rotated: %s, %s): an %s, every collar pixel masked, no black border',
    async (rotated, compression, mask) => {
      const source = fx.collarSource(dir, { bands: 3, rotated });
      const { destination, made } = await reproject(source, compression, `rgb_${rotated}_${compression}_cog.tif`);
      expect(made.collar).toEqual({ mask, nodata: null });
      const out = gdal.open(destination);
      expect(out.bands.count()).toBe(mask === 'mask' ? 3 : 4);
      // PER_DATASET (0x02) internal mask for JPEG; PER_DATASET | ALPHA (0x06) for the alpha band.
      expect(out.bands.get(1).getMaskFlags()).toBe(mask === 'mask' ? 0x02 : 0x06);
      out.close();
      const counts = collarCounts(destination, source);
      expect(counts.outside).toBeGreaterThan(rotated ? 1000 : 50);
      expect(counts).toMatchObject({ maskedInside: 0, unmaskedOutside: 0 });
    },
  );

  it('keeps the source nodata when there is one', async () => {
    const { made } = await reproject(fx.demUtm(dir, 64), 'deflate', 'dem_nodata_cog.tif');
    expect(made.collar).toEqual({ mask: 'source_nodata', nodata: fx.DEM_NODATA });
  });
});
