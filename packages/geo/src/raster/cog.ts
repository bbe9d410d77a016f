import { stat } from 'node:fs/promises';
import path from 'node:path';
import gdal from 'gdal-async';
import type { Compression, Resampling } from './cog-settings.ts';
import { compressionProblem } from './cog-settings.ts';
import { runGdalCli } from '../gdal/cli.ts';
import { gdalTaskError } from '../gdal/errors.ts';
import { isEngineeringCrs, parseCrs } from './crs.ts';
import { rasterError } from './errors.ts';
import { openRaster } from './open.ts';
import { bandRange, unionRange, type BandRange } from './range.ts';
import { antimeridianWarpArgs, gcpCrs, gridWarpArgs, mustWarp, suggestedGrid } from './warp-grid.ts';

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
  /**
   * Aborting stops the work in progress (GDAL's programs are killed) and rejects with
   * `signal.reason`; whatever was written in `workDir` is left for the caller to remove.
   */
  signal?: AbortSignal;
}

/**
 * How the pixels a reprojection adds outside the source footprint are marked:
 * - `source_nodata`: the source's own nodata value carries over;
 * - `source_alpha`: the source's alpha band (or mask) is warped with it;
 * - `nodata`: a nodata value chosen outside the range of the data (single-band or multi-band numeric);
 * - `alpha`: an alpha band added (`gdalwarp -dstalpha`), kept as an alpha band by lossless compressions;
 * - `mask`: that alpha band made an internal mask by the COG driver (JPEG, WebP: no lossy border);
 * - `none`: nothing to mark (no reprojection).
 */
export type CollarMask = 'none' | 'source_nodata' | 'source_alpha' | 'nodata' | 'alpha' | 'mask';

export interface CreateCogResult {
  reprojected: boolean;
  collar: {
    mask: CollarMask;
    /** The nodata value of the COG's bands, when `mask` is `source_nodata` or `nodata`. */
    nodata: number | null;
  };
  /**
   * Files GDAL wrote beside `destination` that belong with it: `<destination>.aux.xml` when the
   * raster has what a GeoTIFF cannot hold (category names). Upload them beside the COG.
   */
  sidecars: string[];
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
 * The pixel work runs in GDAL's own programs (`gdalwarp`, `gdal_translate -of COG`) as child
 * processes, with this process's GDAL settings: peak memory is the command line's (the block
 * cache and warp buffer are the program's, released when it exits, not kept in a long-lived
 * worker's heap), and `signal` stops the work in progress at once by killing the program.
 *
 * @example
 *   await createCog({ source: '/vsiaz/bronze/a.tif', destination: `${dir}/a_cog.tif`, workDir: dir,
 *     sourceCrs: 'EPSG:3857', targetCrs: 'EPSG:4326', compression: 'jpeg', quality: 85,
 *     overviewResampling: 'cubic', reprojectResampling: 'cubic' });
 */
export async function createCog(opts: CreateCogOptions): Promise<CreateCogResult> {
  const label = opts.label ?? opts.source;
  const { signal } = opts;
  signal?.throwIfAborted();
  const src = await openRaster(opts.source, label);
  let reproject: boolean;
  let fileHasCrs: boolean;
  let collar: CreateCogResult['collar'] = { mask: 'none', nodata: null };
  let categoryNames: string[][] = [];
  let acrossAntimeridian = false;
  let gridArgs: string[] = [];
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
    fileHasCrs = (src.srs !== null && !isEngineeringCrs(src.srs)) || gcpCrs(src) !== null;
    // A rotated, bottom-up or GCP-georeferenced source is warped even into its own CRS: every
    // COG is north-up.
    reproject = mustWarp(src, sourceSrs, targetSrs);
    if (reproject) {
      // The grid the tiled path plans too: gdalwarp picks it itself (with CENTER_LONG across the
      // antimeridian) unless GDAL's own choice would lose the data's resolution.
      const planned = suggestedGrid(src, sourceSrs, targetSrs);
      acrossAntimeridian = planned.acrossAntimeridian;
      if (planned.resolutionKept) gridArgs = gridWarpArgs(planned);
      collar = await collarFor(src, opts.compression, label, opts.source);
      categoryNames = categoryNamesOf(src);
    }
  } finally {
    // Closed before GDAL's programs run: nothing of the source stays in this process's block cache.
    src.close();
  }

  const creationOptions = cogCreationOptions(opts);
  const progress = (from: number, span: number, note: string) =>
    opts.onProgress ? (complete: number) => opts.onProgress!(from + complete * span, note) : undefined;
  const paths = { [opts.source]: label };
  // GDAL's command-line programs do the pixel work: a cancel kills them at once (no GDAL call in
  // this process could be stopped), and their memory is released when they exit.
  const run = async (program: string, args: string[], action: string, onProgress?: (f: number) => void) => {
    try {
      await runGdalCli(program, args, { ...(signal ? { signal } : {}), ...(onProgress ? { onProgress } : {}) });
    } catch (err) {
      if (signal?.aborted) throw signal.reason;
      throw gdalTaskError(err, { file: label, paths, action });
    }
  };

  let input = opts.source;
  if (reproject) {
    const native = opts.targetCrs.toLowerCase() === 'native';
    const warpedPath = path.join(opts.workDir, 'warped.tif');
    await run(
      'gdalwarp',
      [
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
        String(WARP_MEMORY_MB),
        '-co',
        'TILED=YES',
        '-co',
        'BLOCKXSIZE=512',
        '-co',
        'BLOCKYSIZE=512',
        '-co',
        'BIGTIFF=IF_SAFER',
        ...antimeridianWarpArgs(acrossAntimeridian),
        ...gridArgs,
        ...collarArgs(collar),
        opts.source,
        warpedPath,
      ],
      'reprojecting',
      progress(0, 0.5, 'reprojecting'),
    );
    // The warp keeps colour tables but not category names (class labels): carry them over.
    if (categoryNames.some((names) => names.length)) {
      const warped = await gdal.openAsync(warpedPath, 'r+');
      try {
        setCategoryNames(warped, categoryNames);
      } finally {
        warped.close();
      }
    }
    input = warpedPath;
  }
  signal?.throwIfAborted();
  const translateArgs = ['-of', 'COG', ...(!fileHasCrs && !reproject ? ['-a_srs', opts.sourceCrs] : [])];
  for (const co of creationOptions) translateArgs.push('-co', co);
  translateArgs.push(input, opts.destination);
  await run(
    'gdal_translate',
    translateArgs,
    'writing the COG of',
    progress(reproject ? 0.5 : 0, reproject ? 0.5 : 1, 'writing COG'),
  );
  const aux = `${opts.destination}.aux.xml`;
  const sidecars = (await stat(aux)
    .then(() => true)
    .catch(() => false))
    ? [aux]
    : [];
  return { reprojected: reproject, collar, creationOptions, sidecars };
}

/** Warp buffer of gdalwarp (`-wm`, MB): GDAL's own default, as the command line uses it. */
const WARP_MEMORY_MB = 128;

/** Category names (GDAL CategoryNames, e.g. land-cover class labels) of each band; [] for a band without. */
export function categoryNamesOf(from: gdal.Dataset): string[][] {
  const out: string[][] = [];
  for (const band of from.bands) {
    band.getMetadata(); // loads a PAM sidecar, where the names usually are
    const names = band.categoryNames ?? [];
    out.push(names.some((c) => c) ? names : []);
  }
  return out;
}

/** Sets the category names of {@link categoryNamesOf} on the bands of `to`. */
export function setCategoryNames(to: gdal.Dataset, names: readonly string[][]): void {
  const n = Math.min(names.length, to.bands.count());
  for (let i = 1; i <= n; i++) if (names[i - 1]!.length) to.bands.get(i).categoryNames = names[i - 1]!;
}

const GMF_ALL_VALID = 0x01;
const GMF_ALPHA = 0x04;
const GMF_NODATA = 0x08;

/** Integer ranges of the GDAL types a nodata value must fit in. */
const TYPE_RANGE: Record<string, [number, number]> = {
  Byte: [0, 255],
  Int8: [-128, 127],
  UInt16: [0, 65535],
  Int16: [-32768, 32767],
  UInt32: [0, 4294967295],
  Int32: [-2147483648, 2147483647],
};

/**
 * A nodata value the data never takes, for `dtype`: for integer types the type's minimum (or
 * 0 for unsigned types), else its maximum; for floats -9999, else the lowest Float32. Null when
 * the data spans the whole type (a Byte band using 0..255): a mask is then the only way.
 */
export function nodataOutside(dtype: string, range: BandRange): number | null {
  const { min, max } = range;
  const outside = (v: number) => min === null || max === null || v < min || v > max;
  const int = TYPE_RANGE[dtype];
  if (int) {
    for (const v of [int[0], int[1]]) if (outside(v)) return v;
    return null;
  }
  if (dtype === 'Float32' || dtype === 'Float64') {
    for (const v of [-9999, -3.4028234663852886e38]) if (outside(v)) return v;
    return null;
  }
  return null;
}

/**
 * How a warp marks the pixels outside the source footprint (see {@link CollarMask}): the
 * source's nodata or alpha/mask if it has one; an alpha band for RGB(A)/paletted imagery and
 * lossy compressions (the COG driver turns it into an internal mask for JPEG/WebP); else a
 * nodata value outside the exact range of the data, or an alpha band when the data uses every
 * value of its type.
 */
export async function collarFor(
  src: gdal.Dataset,
  compression: Compression,
  label: string,
  sourcePath: string,
): Promise<CreateCogResult['collar']> {
  const bands = [...src.bands];
  const first = bands[0]!;
  if (first.noDataValue !== null) return { mask: 'source_nodata', nodata: first.noDataValue };
  if (bands.some((b) => b.colorInterpretation === 'Alpha')) return { mask: 'source_alpha', nodata: null };
  const lossy = compression === 'jpeg' || compression === 'webp';
  // An internal mask (per-dataset, not from nodata): gdalwarp reads it as the source's validity; -dstalpha keeps it.
  const flags = first.getMaskFlags();
  const masked = (flags & GMF_ALL_VALID) === 0 && (flags & GMF_NODATA) === 0 && (flags & GMF_ALPHA) === 0;
  if (masked) return { mask: lossy ? 'mask' : 'alpha', nodata: null };
  const imagery =
    first.dataType === 'Byte' &&
    bands.length >= 3 &&
    bands.slice(0, 3).every((b) => /Red|Green|Blue/.test(b.colorInterpretation ?? ''));
  if (lossy || imagery) return { mask: lossy ? 'mask' : 'alpha', nodata: null };
  const dtype = first.dataType ?? '';
  const ranges: BandRange[] = [];
  for (const b of bands) ranges.push(await bandRange(b, label, sourcePath));
  const nodata = nodataOutside(dtype, unionRange(ranges));
  return nodata === null ? { mask: 'alpha', nodata: null } : { mask: 'nodata', nodata };
}

/** gdalwarp options for a collar choice. */
export function collarArgs(collar: CreateCogResult['collar']): string[] {
  switch (collar.mask) {
    case 'nodata':
      return ['-dstnodata', String(collar.nodata)];
    case 'alpha':
    case 'mask':
      return ['-dstalpha'];
    default:
      // The source's nodata or alpha is carried over by gdalwarp itself.
      return [];
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
