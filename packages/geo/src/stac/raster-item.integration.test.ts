import { createHash } from 'node:crypto';
import { createReadStream, readFileSync, statSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { multihashSha256 } from './checksum.ts';
import { buildRasterItem, COG, GEOTIFF, tiffDatetime } from './raster-item.ts';
import { validateItem } from './validate.ts';
import { withStacLinks } from './services.ts';
import { tmp, writeRaster } from './__fixtures__/rasters.ts';
import type { MultiPolygon, Polygon } from './types.ts';

const dir = tmp();
const source = (path: string, checksum?: string) => ({
  gdalPath: path,
  href: `http://127.0.0.1:10000/devstoreaccount1/bronze/${path.split('/').pop()}`,
  size: statSync(path).size,
  lastModified: new Date('2024-03-01T12:00:00Z'),
  checksum,
});

describe('buildRasterItem', () => {
  it('describes a UTM COG: WGS84 footprint, projection v2, bands with statistics, file size and checksum', async () => {
    // 1200 x 800 px of 10 m in UTM 31N, values 0..99 plus a nodata row.
    const path = await writeRaster(dir, 'utm.tif', {
      epsg: 32631,
      geoTransform: [500000, 10, 0, 5000000, 0, -10],
      width: 1200,
      height: 800,
      nodata: 65535,
      value: (c, r) => (r === 0 ? 65535 : (c + r) % 100),
      datetime: '2020:05:17 10:30:00',
      cog: true,
    });
    const checksum = await multihashSha256(createReadStream(path));
    expect(checksum).toBe('1220' + createHash('sha256').update(readFileSync(path)).digest('hex'));
    const item = await buildRasterItem(source(path, checksum), { id: 'bronze-utm.tif', collection: 'dev' });

    expect(item.properties.datetime).toBe('2020-05-17T10:30:00Z');
    expect(item.properties['proj:code']).toBe('EPSG:32631');
    expect(item.properties['proj:wkt2']).toMatch(/^PROJCRS\["WGS 84 \/ UTM zone 31N"/);
    expect(item.properties['proj:shape']).toEqual([800, 1200]);
    expect(item.properties['proj:transform']).toEqual([10, 0, 500000, 0, -10, 5000000, 0, 0, 1]);
    expect(item.properties['proj:bbox']).toEqual([500000, 4992000, 512000, 5000000]);
    // UTM 31N central meridian is 3°E: (500000, 5000000) is (3°, 45.1535°).
    expect(item.bbox![0]).toBeCloseTo(3, 6);
    expect(item.bbox![3]).toBeCloseTo(45.153477, 5);
    expect(item.bbox![2]).toBeCloseTo(3.1527, 3);
    expect(item.bbox![1]).toBeCloseTo(45.0815, 3);
    expect(item.geometry!.type).toBe('Polygon');
    expect((item.geometry as Polygon).coordinates[0]!.length).toBe(81);

    const asset = item.assets.data!;
    expect(asset.type).toBe(COG);
    expect(asset.href).toBe('http://127.0.0.1:10000/devstoreaccount1/bronze/utm.tif');
    expect(asset['file:size']).toBe(statSync(path).size);
    expect(asset['file:checksum']).toBe(checksum);
    const [band] = asset['raster:bands'] as Array<Record<string, any>>;
    expect(band!.data_type).toBe('uint16');
    expect(band!.nodata).toBe(65535);
    expect(band!.statistics.minimum).toBe(0);
    expect(band!.statistics.maximum).toBe(99);
    expect(band!.statistics.mean).toBeGreaterThan(45);
    expect(band!.statistics.mean).toBeLessThan(54);
    expect(band!.statistics.valid_percent).toBeGreaterThan(99);
    expect(band!.histogram.count).toBe(256);
    expect(band!.histogram.buckets.reduce((a: number, b: number) => a + b, 0)).toBeGreaterThan(500_000);

    expect(validateItem(withStacLinks(item, 'http://x.test/stac'))).toEqual([]);
  });

  it('uses the blob last-modified when the file has no datetime, and plain GeoTIFF media type for a strip TIFF', async () => {
    const path = await writeRaster(dir, 'plain.tif', {
      epsg: 4326,
      geoTransform: [10, 0.01, 0, 50, 0, -0.01],
      width: 100,
      height: 50,
      dataType: 'Byte',
    });
    const item = await buildRasterItem(source(path), { id: 'p', collection: 'dev' });
    expect(item.properties.datetime).toBe('2024-03-01T12:00:00.000Z');
    expect(item.assets.data!.type).toBe(GEOTIFF);
    expect(item.bbox).toEqual([10, 49.5, 11, 50]);
    expect(item.assets.data!['file:checksum']).toBeUndefined();
  });

  it('cuts a footprint that crosses the antimeridian into a MultiPolygon with west > east', async () => {
    const path = await writeRaster(dir, 'am.tif', {
      epsg: 4326,
      geoTransform: [179.5, 0.01, 0, -16, 0, -0.01],
      width: 100,
      height: 100,
      dataType: 'Byte',
    });
    const item = await buildRasterItem(source(path), { id: 'am', collection: 'dev' });
    expect(item.bbox).toEqual([179.5, -17, -179.5, -16]);
    const geom = item.geometry as MultiPolygon;
    expect(geom.type).toBe('MultiPolygon');
    expect(geom.coordinates).toHaveLength(2);
    const lons = geom.coordinates.flat(2).map((p) => p[0]!);
    expect(Math.max(...lons)).toBeLessThanOrEqual(180);
    expect(Math.min(...lons)).toBeGreaterThanOrEqual(-180);
    expect(validateItem(withStacLinks(item, 'http://x.test/stac'))).toEqual([]);
  });

  it('handles a projected raster straddling 180° (UTM zone 60)', async () => {
    // UTM 60S: central meridian 177°E; 800 km wide east of it reaches past 180°.
    const path = await writeRaster(dir, 'utm60.tif', {
      epsg: 32760,
      geoTransform: [500000, 1000, 0, 8000000, 0, -1000],
      width: 800,
      height: 100,
      dataType: 'Byte',
    });
    const item = await buildRasterItem(source(path), { id: 'u60', collection: 'dev' });
    expect(item.bbox![0]).toBeCloseTo(177, 3);
    expect(item.bbox![2]).toBeLessThan(-170);
    expect(item.geometry!.type).toBe('MultiPolygon');
  });

  it('refuses a raster without CRS', async () => {
    const path = await writeRaster(dir, 'nocrs.tif', {
      epsg: 4326,
      geoTransform: [0, 1, 0, 0, 0, -1],
      width: 4,
      height: 4,
    });
    const { default: gdal } = await import('gdal-async');
    const ds = gdal.open(path, 'r+');
    ds.srs = null;
    ds.close();
    await expect(buildRasterItem(source(path), { id: 'n', collection: 'dev' })).rejects.toMatchObject({
      code: 'RASTER_NO_CRS',
    });
  });

  it('parses TIFF datetimes', () => {
    expect(tiffDatetime('2021:12:31 23:59:59')).toBe('2021-12-31T23:59:59Z');
    expect(tiffDatetime('yesterday')).toBeNull();
    expect(tiffDatetime(undefined)).toBeNull();
  });
});
