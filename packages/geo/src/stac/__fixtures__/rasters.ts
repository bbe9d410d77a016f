import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import gdal from 'gdal-async';

export const tmp = () => mkdtempSync(join(tmpdir(), 'cm-stac-'));

export interface FixtureRaster {
  epsg: number;
  /** [x0, pixel width, 0, y0, 0, -pixel height] */
  geoTransform: number[];
  width: number;
  height: number;
  dataType?: string;
  nodata?: number;
  datetime?: string;
  /** Pixel value at (col, row) of band 1. */
  value?: (col: number, row: number) => number;
  cog?: boolean;
}

/** Writes a one-band GeoTIFF (or a COG via GDAL's COG driver) and returns its path. */
export async function writeRaster(dir: string, name: string, spec: FixtureRaster): Promise<string> {
  const plain = join(dir, spec.cog ? `${name}.src.tif` : name);
  const ds = gdal.open(plain, 'w', 'GTiff', spec.width, spec.height, 1, spec.dataType ?? gdal.GDT_UInt16);
  ds.srs = gdal.SpatialReference.fromEPSG(spec.epsg);
  ds.geoTransform = spec.geoTransform;
  if (spec.datetime) ds.setMetadata({ TIFFTAG_DATETIME: spec.datetime });
  const band = ds.bands.get(1);
  if (spec.nodata !== undefined) band.noDataValue = spec.nodata;
  const data = new Float64Array(spec.width * spec.height);
  const value = spec.value ?? ((c, r) => (c + r) % 100);
  for (let r = 0; r < spec.height; r++) for (let c = 0; c < spec.width; c++) data[r * spec.width + c] = value(c, r);
  band.pixels.write(0, 0, spec.width, spec.height, data);
  ds.flush();
  ds.close();
  if (!spec.cog) return plain;
  const out = join(dir, name);
  const src = gdal.open(plain);
  gdal.translate(out, src, ['-of', 'COG', '-co', 'BLOCKSIZE=256', '-co', 'COMPRESS=DEFLATE']);
  src.close();
  return out;
}
