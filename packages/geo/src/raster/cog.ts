import path from 'node:path';
import gdal from 'gdal-async';
import { isRotated } from './bounds.ts';
import type { Compression, Resampling } from './cog-settings.ts';
import { compressionProblem } from './cog-settings.ts';
import { parseCrs } from './crs.ts';
import { rasterError } from './errors.ts';
import { openRaster } from './open.ts';

export interface CreateCogOptions {
  /** What GDAL opens: a local path or `/vsiaz/<container>/<blob>`. */
  source: string;
  /** Label for messages, e.g. `bronze/dem.tif`. */
  label?: string;
  /** Local path of the COG to write. */
  destination: string;
  /** Folder for the intermediate warped raster (deleted by the caller). */
  workDir: string;
  /** CRS of the source (the file's, or the user's when the file has none). */
  sourceCrs: string;
  /** Target CRS (`EPSG:4326`, any GDAL-readable CRS) or `native` to keep the source CRS. */
  targetCrs: string;
  compression: Compression;
  /** JPEG/WebP quality 1-100 (ignored by lossless compressions). */
  quality?: number | null;
  overviewResampling: Resampling;
  reprojectResampling: Resampling;
  /** Tile size in pixels; 512 by default. */
  blockSize?: number;
  /** Called with 0..1 as GDAL works. */
  onProgress?: (fraction: number, note: string) => void;
}

export interface CreateCogResult {
  reprojected: boolean;
  /** The GDAL creation options used (for the record). */
  creationOptions: string[];
}

/**
 * Converts a raster to a Cloud-Optimized GeoTIFF with GDAL's COG driver, reading the source in
 * place. When the target CRS differs from the source (compared semantically) or the
 * geotransform is rotated, the source is first warped into a tiled temporary GeoTIFF in
 * `workDir` (block-wise, bounded memory), then COG-translated; otherwise the source goes
 * straight to the COG driver. Nodata and colour tables carry over.
 *
 * @example
 *   await createCog({ source: '/vsiaz/bronze/a.tif', destination: '/tmp/x/a_cog.tif', workDir: '/tmp/x',
 *     sourceCrs: 'EPSG:3857', targetCrs: 'EPSG:4326', compression: 'jpeg', quality: 85,
 *     overviewResampling: 'cubic', reprojectResampling: 'cubic' });
 */
export async function createCog(opts: CreateCogOptions): Promise<CreateCogResult> {
  const label = opts.label ?? opts.source;
  const src = await openRaster(opts.source, label);
  try {
    const band1 = src.bands.get(1);
    const problem = compressionProblem(opts.compression, band1.dataType ?? '', src.bands.count());
    if (problem)
      throw rasterError(
        'COMPRESSION_UNSUPPORTED',
        `compression ${opts.compression} cannot be used for ${label}: ${problem}`,
      );
    const sourceSrs = parseCrs(opts.sourceCrs);
    if (!sourceSrs)
      throw rasterError('CRS_MISSING', `source CRS '${opts.sourceCrs}' of ${label} is not a CRS GDAL understands`);
    const native = opts.targetCrs.toLowerCase() === 'native';
    const targetSrs = native ? sourceSrs : parseCrs(opts.targetCrs);
    if (!targetSrs) throw rasterError('CRS_MISSING', `target_crs '${opts.targetCrs}' is not a CRS GDAL understands`);
    const fileHasCrs = src.srs !== null;
    const reproject = !targetSrs.isSame(sourceSrs) || isRotated(src.geoTransform ?? [0, 1, 0, 0, 0, -1]);

    const creationOptions = cogCreationOptions(opts);
    const progress = (from: number, span: number, note: string) =>
      opts.onProgress
        ? { progress_cb: (complete: number) => opts.onProgress!(from + complete * span, note) }
        : undefined;

    let input: gdal.Dataset = src;
    let warped: gdal.Dataset | null = null;
    if (reproject) {
      const warpArgs = [
        '-of',
        'GTiff',
        '-s_srs',
        opts.sourceCrs,
        '-t_srs',
        native ? opts.sourceCrs : opts.targetCrs,
        '-r',
        opts.reprojectResampling,
        '-multi',
        '-wo',
        'NUM_THREADS=ALL_CPUS',
        '-wm',
        '128',
        '-co',
        'TILED=YES',
        '-co',
        'BLOCKXSIZE=512',
        '-co',
        'BLOCKYSIZE=512',
        '-co',
        'BIGTIFF=IF_SAFER',
      ];
      const warpedPath = path.join(opts.workDir, 'warped.tif');
      const written = await gdal.warpAsync(warpedPath, null, [src], warpArgs, progress(0, 0.5, 'reprojecting'));
      // Closed and reopened read-only: flushes the warp's dirty blocks out of the shared
      // block cache before the COG driver reads the file twice (overviews, then full res).
      written.close();
      warped = await gdal.openAsync(warpedPath);
      input = warped;
    }
    try {
      const translateArgs = ['-of', 'COG', ...(!fileHasCrs && !reproject ? ['-a_srs', opts.sourceCrs] : [])];
      for (const co of creationOptions) translateArgs.push('-co', co);
      const out = await gdal.translateAsync(
        opts.destination,
        input,
        translateArgs,
        progress(reproject ? 0.5 : 0, reproject ? 0.5 : 1, 'writing COG'),
      );
      out.close();
    } finally {
      warped?.close();
    }
    return { reprojected: reproject, creationOptions };
  } finally {
    src.close();
  }
}

/** The COG driver creation options for the chosen compression and resampling. */
export function cogCreationOptions(
  opts: Pick<CreateCogOptions, 'compression' | 'quality' | 'overviewResampling' | 'blockSize'>,
): string[] {
  const co = [
    `COMPRESS=${opts.compression.toUpperCase()}`,
    `BLOCKSIZE=${opts.blockSize ?? 512}`,
    `OVERVIEW_RESAMPLING=${opts.overviewResampling.toUpperCase()}`,
    'NUM_THREADS=ALL_CPUS',
    'BIGTIFF=IF_SAFER',
  ];
  if ((opts.compression === 'jpeg' || opts.compression === 'webp') && opts.quality) co.push(`QUALITY=${opts.quality}`);
  // Horizontal differencing (or its floating-point variant, chosen by the driver) makes
  // deflate/zstd/lzw markedly smaller on imagery and elevation.
  if (['deflate', 'zstd', 'lzw'].includes(opts.compression)) co.push('PREDICTOR=YES');
  return co;
}
