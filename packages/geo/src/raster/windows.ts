import { rm } from 'node:fs/promises';
import gdal from 'gdal-async';
import { gdalTaskError } from '../gdal/errors.ts';
import type { Resampling } from './cog-settings.ts';
import { windowExtent, type GridSource, type GridWindow, type RasterGrid } from './grid.ts';
import { openRaster } from './open.ts';

export interface WriteWindowOptions {
  /** The inputs (one for process_raster, many for a mosaic); GDAL skips those outside the window. */
  sources: readonly GridSource[];
  grid: RasterGrid;
  window: GridWindow;
  /** Warp onto the grid (true), or copy the window of the inputs already on it (false). */
  reproject: boolean;
  resampling: Resampling;
  /** gdalwarp options marking the collar (`collarArgs` of the conversion's collar choice). */
  collarArgs: readonly string[];
  /** Assign the grid's CRS to the window (the input has no usable CRS of its own). */
  assignCrs: boolean;
  /** Local GeoTIFF to write. */
  destination: string;
  /** gdalwarp working memory (-wm), MB. */
  warpMemoryMb: number;
  /** Threads for warping and compression. */
  threads: number;
  /**
   * The inputs are tiles of a mosaic, not the grid itself: copy through a VRT on the window's
   * extent even when only one input touches the window.
   */
  mosaic?: boolean;
}

/** Lossless, tiled, compressed: the window is an intermediate, never the product. */
function windowCreationOptions(dtype: string, threads: number): string[] {
  const float = dtype.startsWith('Float');
  return [
    'TILED=YES',
    'BLOCKXSIZE=256',
    'BLOCKYSIZE=256',
    'COMPRESS=ZSTD',
    `PREDICTOR=${float ? 3 : 2}`,
    'BIGTIFF=IF_SAFER',
    `NUM_THREADS=${threads}`,
  ];
}

const co = (options: string[]) => options.flatMap((o) => ['-co', o]);

/**
 * Writes one window of the target grid as a lossless tiled GeoTIFF. Reprojected: `gdalwarp`
 * with `-te`/`-ts` of the window, so GDAL reads the source window it needs, resampling
 * kernel margin included, and every pixel lands where the whole-raster warp puts it. On the
 * grid already: `gdal_translate -srcwin` of the one input, or of a VRT of the inputs built on
 * the window's extent and the grid's resolution (`gdalbuildvrt -te -tr`, the same pixels
 * `gdalbuildvrt` of all inputs holds there).
 */
export async function writeWindow(opts: WriteWindowOptions): Promise<void> {
  const paths = Object.fromEntries(opts.sources.map((s) => [s.path, s.label]));
  const first = opts.sources[0]!;
  const label = opts.sources.length === 1 ? first.label : `${opts.sources.length} inputs`;
  const inputs: gdal.Dataset[] = [];
  let vrt: gdal.Dataset | null = null;
  const vrtPath = `${opts.destination}.vrt`;
  try {
    for (const s of opts.sources) inputs.push(await openRaster(s.path, s.label));
    const dtype = inputs[0]!.bands.get(1).dataType ?? 'Byte';
    const [minX, minY, maxX, maxY] = windowExtent(opts.grid, opts.window).map(String) as [
      string,
      string,
      string,
      string,
    ];
    const { x, y, width, height } = opts.window;
    let out: gdal.Dataset;
    try {
      if (opts.reproject) {
        const sameCrs = opts.sources.every((s) => s.crs === first.crs);
        out = await gdal.warpAsync(opts.destination, null, inputs, [
          '-of',
          'GTiff',
          ...(sameCrs ? ['-s_srs', first.crs] : []),
          '-t_srs',
          opts.grid.crs,
          '-te',
          minX,
          minY,
          maxX,
          maxY,
          '-ts',
          String(width),
          String(height),
          '-r',
          opts.resampling,
          '-wm',
          String(opts.warpMemoryMb),
          '-wo',
          `NUM_THREADS=${opts.threads}`,
          ...co(windowCreationOptions(dtype, opts.threads)),
          ...opts.collarArgs,
        ]);
      } else {
        let src = inputs[0]!;
        let srcwin = [x, y, width, height];
        if (inputs.length > 1 || opts.mosaic) {
          const [, rx, , , , ry] = opts.grid.geoTransform;
          vrt = await gdal.buildVRTAsync(vrtPath, inputs, [
            '-te',
            minX,
            minY,
            maxX,
            maxY,
            '-tr',
            String(rx),
            String(Math.abs(ry)),
          ]);
          src = vrt;
          srcwin = [0, 0, width, height];
        }
        out = await gdal.translateAsync(opts.destination, src, [
          '-of',
          'GTiff',
          '-srcwin',
          ...srcwin.map(String),
          ...(opts.assignCrs ? ['-a_srs', opts.grid.crs] : []),
          ...co(windowCreationOptions(dtype, opts.threads)),
        ]);
      }
    } catch (err) {
      throw gdalTaskError(err, { file: label, paths, action: `writing window ${opts.window.key} of` });
    }
    out.close();
  } finally {
    vrt?.close();
    for (const ds of inputs) ds.close();
    await rm(vrtPath, { force: true });
  }
}
