import gdal from 'gdal-async';
import { describe, expect, it } from 'vitest';
import { geoTiffKeys } from './geotiff-keys.ts';

const geoKeysFingerprint = (bytes: Buffer) => geoTiffKeys(bytes)?.crs ?? null;

/** A 4 x 4 GeoTIFF written by GDAL in memory, as bytes. */
function tiff(srs: string | null, options: string[] = []): Buffer {
  const path = `/vsimem/geokeys-${Math.random().toString(36).slice(2)}.tif`;
  const ds = gdal.open(path, 'w', 'GTiff', 4, 4, 1, gdal.GDT_Byte, options);
  if (srs) ds.srs = gdal.SpatialReference.fromUserInput(srs);
  ds.geoTransform = [500000, 10, 0, 5000000, 0, -10];
  ds.close();
  return gdal.vsimem.release(path);
}

describe('geoTiffKeys', () => {
  it('is the same for one CRS whatever the byte order and TIFF layout, and differs between CRSs', () => {
    const le = geoKeysFingerprint(tiff('EPSG:32631'));
    expect(le).toMatch(/^k:1,1,0,\d+,/);
    expect(le).toContain('32631');
    expect(geoKeysFingerprint(tiff('EPSG:32631', ['ENDIANNESS=BIG']))).toBe(le);
    expect(geoKeysFingerprint(tiff('EPSG:32631', ['BIGTIFF=YES']))).toBe(le);
    expect(geoKeysFingerprint(tiff('EPSG:32632'))).not.toBe(le);
    // A CRS without an EPSG code: its parameters are in GeoDoubleParams.
    const laea = geoKeysFingerprint(tiff('+proj=laea +lat_0=52 +lon_0=10 +x_0=4321000 +y_0=3210000 +ellps=GRS80'));
    expect(laea).toMatch(/\|d:.*4321000.*\|a:/);
    expect(geoKeysFingerprint(tiff('+proj=laea +lat_0=52 +lon_0=11 +x_0=4321000 +y_0=3210000 +ellps=GRS80'))).not.toBe(
      laea,
    );
  });

  it('tells whether the file has GDAL metadata (where band units are kept)', () => {
    expect(geoTiffKeys(tiff('EPSG:32631'))?.gdalMetadata).toBe(false);
    const path = '/vsimem/geokeys-unit.tif';
    const ds = gdal.open(path, 'w', 'GTiff', 4, 4, 1, gdal.GDT_Byte);
    ds.srs = gdal.SpatialReference.fromEPSG(32631);
    ds.geoTransform = [500000, 10, 0, 5000000, 0, -10];
    ds.bands.get(1).unitType = 'm';
    ds.close();
    expect(geoTiffKeys(gdal.vsimem.release(path))?.gdalMetadata).toBe(true);
  });

  it('is null for bytes GDAL must be asked about: not a TIFF, no GeoKeys, offsets past the end', () => {
    expect(geoKeysFingerprint(Buffer.from('not a raster at all, just text'))).toBeNull();
    expect(geoKeysFingerprint(tiff(null))).toBeNull();
    const bytes = tiff('EPSG:32631');
    expect(geoKeysFingerprint(bytes.subarray(0, 12))).toBeNull();
    // The IFD offset pointed past the end of the bytes.
    const broken = Buffer.from(bytes);
    broken.writeUInt32LE(bytes.length + 100, 4);
    expect(geoKeysFingerprint(broken)).toBeNull();
  });
});
