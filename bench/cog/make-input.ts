import gdal from 'gdal-async';

/**
 * Writes a size x size x 3 Byte GeoTIFF in EPSG:3857 (tiled, uncompressed), 512 rows at a
 * time: smooth gradients plus a hashed texture so that JPEG has real work to do.
 */
export function makeInput(file: string, size: number): void {
  const ds = gdal.open(file, 'w', 'GTiff', size, size, 3, 'Byte', [
    'TILED=YES',
    'BLOCKXSIZE=512',
    'BLOCKYSIZE=512',
    'BIGTIFF=IF_SAFER',
  ]);
  ds.srs = gdal.SpatialReference.fromEPSG(3857);
  ds.geoTransform = [1113194, 10, 0, 6446275, 0, -10];
  const rows = 512;
  const buf = new Uint8Array(size * rows);
  for (let b = 1; b <= 3; b++) {
    const band = ds.bands.get(b);
    band.colorInterpretation = ['Red', 'Green', 'Blue'][b - 1]!;
    for (let y0 = 0; y0 < size; y0 += rows) {
      const h = Math.min(rows, size - y0);
      for (let y = 0; y < h; y++) {
        const yy = y0 + y;
        for (let x = 0; x < size; x++) {
          const hash = ((x * 73856093) ^ (yy * 19349663) ^ (b * 83492791)) >>> 0;
          buf[y * size + x] = ((x >> 4) * b + (yy >> 5) + (hash & 31)) & 255;
        }
      }
      band.pixels.write(0, y0, size, h, buf.subarray(0, size * h));
    }
  }
  ds.close();
}
