import path from 'node:path';
import gdal from 'gdal-async';

export const NODATA = -9999;
export const TILE = { width: 300, height: 200, res: 0.001, x0: 10, y0: 50 };

/**
 * Writes tile (col, row) of a 2 x 2 grid of adjacent Float32 EPSG:4326 rasters: a smooth surface
 * continuous across tiles, a nodata corner in tile (0, 0). `bands` > 1 for a mismatching input.
 */
export function mosaicTile(dir: string, col: number, row: number, bands = 1): string {
  const file = path.join(dir, `tile_${col}_${row}${bands > 1 ? `_b${bands}` : ''}.tif`);
  const { width, height, res, x0, y0 } = TILE;
  const ds = gdal.open(file, 'w', 'GTiff', width, height, bands, gdal.GDT_Float32, ['TILED=YES']);
  ds.srs = gdal.SpatialReference.fromUserInput('EPSG:4326');
  ds.geoTransform = [x0 + col * width * res, res, 0, y0 - row * height * res, 0, -res];
  const data = new Float32Array(width * height);
  for (let y = 0; y < height; y++)
    for (let x = 0; x < width; x++) {
      const gx = col * width + x;
      const gy = row * height + y;
      data[y * width + x] =
        gx < 20 && gy < 20 ? NODATA : 100 + 50 * Math.sin(gx / 37) * Math.cos(gy / 23) + gx * 0.1 + gy * 0.05;
    }
  for (let b = 1; b <= bands; b++) {
    const band = ds.bands.get(b);
    band.noDataValue = NODATA;
    band.pixels.write(0, 0, width, height, data);
  }
  ds.close();
  return file;
}
