import { parseCrs } from './crs.ts';
import { rasterError } from './errors.ts';
import { mosaicError } from './mosaic.ts';
import { openRaster } from './open.ts';
import { mustWarp, suggestedGrid } from './warp-grid.ts';

export type GeoTransform = [number, number, number, number, number, number];

/** A north-up pixel grid in a CRS: where every output pixel of a tiled conversion lies. */
export interface RasterGrid {
  /** The CRS as given to GDAL (`EPSG:4326`, a WKT, the source's CRS for `native`). */
  crs: string;
  geoTransform: GeoTransform;
  width: number;
  height: number;
}

/** One input of a grid: what GDAL opens, a label for messages, and its CRS (the file's or the user's). */
export interface GridSource {
  path: string;
  label: string;
  crs: string;
}

export interface PlannedGrid {
  grid: RasterGrid;
  /** True when the sources are warped onto the grid (another CRS, or a rotated source). */
  reproject: boolean;
}

/**
 * The target grid of a conversion, planned once for all windows.
 * - One source, reprojected: GDAL's suggested warp output (`GDALSuggestedWarpOutput2`), the grid
 *   `gdalwarp -t_srs` picks without `-tr`/`-te` (across the antimeridian: with its longitudes
 *   unwrapped past 180°, see warp-grid.ts).
 * - One source in the target CRS: the source's own grid.
 * - Several sources in the target CRS: the grid `gdalbuildvrt` builds (union of the extents,
 *   average resolution, size rounded to the nearest pixel).
 * - Several sources, reprojected: the union of each source's suggested output, at the finest
 *   resolution among them (what `gdalwarp` does for several inputs).
 */
export async function planGrid(sources: readonly GridSource[], targetCrs: string): Promise<PlannedGrid> {
  if (sources.length === 0) throw mosaicError('RASTERS_NONE', 'no input raster to plan a grid for');
  const native = targetCrs.toLowerCase() === 'native';
  const gridCrs = native ? sources[0]!.crs : targetCrs;
  const targetSrs = parseCrs(gridCrs);
  if (!targetSrs) throw rasterError('CRS_MISSING', `target_crs '${targetCrs}' is not a CRS GDAL understands`);
  const suggested: Array<{ gt: GeoTransform; width: number; height: number }> = [];
  let reproject = false;
  for (const source of sources) {
    const srs = parseCrs(source.crs);
    if (!srs)
      throw rasterError('CRS_MISSING', `source CRS '${source.crs}' of ${source.label} is not a CRS GDAL understands`);
    const ds = await openRaster(source.path, source.label);
    try {
      const gt = (ds.geoTransform ?? [0, 1, 0, 0, 0, -1]) as GeoTransform;
      if (mustWarp(ds, srs, targetSrs)) {
        reproject = true;
        const out = suggestedGrid(ds, srs, targetSrs);
        suggested.push({ gt: out.geoTransform, width: out.width, height: out.height });
      } else {
        suggested.push({ gt, width: ds.rasterSize.x, height: ds.rasterSize.y });
      }
    } finally {
      ds.close();
    }
  }
  if (suggested.length === 1) {
    const only = suggested[0]!;
    return { grid: { crs: gridCrs, geoTransform: only.gt, width: only.width, height: only.height }, reproject };
  }
  let minX = Infinity;
  let maxX = -Infinity;
  let minY = Infinity;
  let maxY = -Infinity;
  let sumX = 0;
  let sumY = 0;
  let finestX = Infinity;
  let finestY = Infinity;
  for (const s of suggested) {
    const [x0, rx, , y0, , ry] = s.gt;
    minX = Math.min(minX, x0);
    maxX = Math.max(maxX, x0 + rx * s.width);
    maxY = Math.max(maxY, y0);
    minY = Math.min(minY, y0 + ry * s.height);
    sumX += rx;
    sumY += Math.abs(ry);
    finestX = Math.min(finestX, rx);
    finestY = Math.min(finestY, Math.abs(ry));
  }
  const resX = reproject ? finestX : sumX / suggested.length;
  const resY = reproject ? finestY : sumY / suggested.length;
  const width = reproject ? Math.floor((maxX - minX + resX / 2) / resX) : Math.floor(0.5 + (maxX - minX) / resX);
  const height = reproject ? Math.floor((maxY - minY + resY / 2) / resY) : Math.floor(0.5 + (maxY - minY) / resY);
  return { grid: { crs: gridCrs, geoTransform: [minX, resX, 0, maxY, 0, -resY], width, height }, reproject };
}

/** A rectangle of pixels of a grid; `key` names it (`r0003_c0012`), stable across re-plans. */
export interface GridWindow {
  key: string;
  row: number;
  col: number;
  x: number;
  y: number;
  width: number;
  height: number;
}

/** Splits a grid into windows of `size` × `size` pixels (the last row and column smaller), row by row. */
export function splitGrid(grid: Pick<RasterGrid, 'width' | 'height'>, size: number): GridWindow[] {
  const windows: GridWindow[] = [];
  for (let row = 0, y = 0; y < grid.height; row++, y += size) {
    for (let col = 0, x = 0; x < grid.width; col++, x += size) {
      windows.push({
        key: `r${String(row).padStart(4, '0')}_c${String(col).padStart(4, '0')}`,
        row,
        col,
        x,
        y,
        width: Math.min(size, grid.width - x),
        height: Math.min(size, grid.height - y),
      });
    }
  }
  return windows;
}

/** `[minX, minY, maxX, maxY]` of a window of the grid, in the grid's CRS (gdalwarp `-te`). */
export function windowExtent(grid: RasterGrid, w: Pick<GridWindow, 'x' | 'y' | 'width' | 'height'>): number[] {
  const [x0, rx, , y0, , ry] = grid.geoTransform;
  const left = x0 + rx * w.x;
  const right = x0 + rx * (w.x + w.width);
  const top = y0 + ry * w.y;
  const bottom = y0 + ry * (w.y + w.height);
  return [Math.min(left, right), Math.min(top, bottom), Math.max(left, right), Math.max(top, bottom)];
}

const BYTES: Record<string, number> = {
  Byte: 1,
  Int8: 1,
  UInt16: 2,
  Int16: 2,
  UInt32: 4,
  Int32: 4,
  Float32: 4,
  UInt64: 8,
  Int64: 8,
  Float64: 8,
  CInt16: 4,
  CInt32: 8,
  CFloat32: 8,
  CFloat64: 16,
};

/** Bytes of a raster held uncompressed: width × height × bands × sample size. */
export function uncompressedBytes(width: number, height: number, bands: number, dtype: string): number {
  return width * height * bands * (BYTES[dtype] ?? 8);
}
