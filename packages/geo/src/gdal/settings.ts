import os from 'node:os';
import gdal from 'gdal-async';

/** Options for {@link configureGdal}. */
export interface GdalSetupOptions {
  /**
   * Block cache in MB (GDAL_CACHEMAX) of the GDAL programs that do the pixel work of a COG
   * (`runGdalCli`: gdalwarp, gdal_translate). GDAL's default is 5% of RAM per process, which
   * is not a bound we can reason about; a fixed figure keeps a conversion of a 2 GB raster well
   * under 1 GB RSS. Default: the GDAL_CACHEMAX environment variable, else 256. The worker
   * process's own cache is {@link inProcessCacheMaxMb}.
   */
  cacheMaxMb?: number;
  /** GDAL configuration options to apply, e.g. the /vsiaz/ settings of the storage config. */
  options?: Record<string, string | undefined>;
}

let applied: Record<string, string> = {};

/** Default block cache (MB) of GDAL's programs when the operator has not set GDAL_CACHEMAX. */
export const DEFAULT_GDAL_CACHEMAX_MB = 256;

/**
 * Default block cache (MB) of GDAL inside a worker process (CM_GDAL_INPROCESS_CACHEMAX_MB
 * overrides it). What GDAL reads in-process is read once, window by window (validation's
 * statistics and ranges, metadata, a COG's layout check): a cache cannot help it, while every
 * MB it fills stays in the worker's RSS once freed (the allocator keeps it). Validation of a
 * 10,000² RGB raster peaked at 575 MB RSS with 256 MB and at 350 MB with 32 MB, in the same
 * 2.2-2.7 s. The heavy pixel work runs in GDAL's programs with {@link DEFAULT_GDAL_CACHEMAX_MB}.
 */
export const DEFAULT_INPROCESS_CACHEMAX_MB = 32;

/** The block cache (MB) of GDAL in this process (see {@link DEFAULT_INPROCESS_CACHEMAX_MB}). */
export function inProcessCacheMaxMb(): number {
  const raw = Number(process.env['CM_GDAL_INPROCESS_CACHEMAX_MB']);
  return Number.isFinite(raw) && raw > 0 ? raw : DEFAULT_INPROCESS_CACHEMAX_MB;
}

// GDAL reads GDAL_CACHEMAX once, on the first block-cache use of the process: set this process's
// bound as soon as this module loads, before any raster is read (over the GDAL_CACHEMAX an
// operator may have set for GDAL's programs, which GDAL would otherwise read from the environment).
gdal.config.set('GDAL_CACHEMAX', String(inProcessCacheMaxMb()));

/** The block cache (MB) of GDAL's programs: configureGdal's, else GDAL_CACHEMAX, else the default. */
function programCacheMaxMb(): string {
  return applied['GDAL_CACHEMAX'] ?? (process.env['GDAL_CACHEMAX'] || String(DEFAULT_GDAL_CACHEMAX_MB));
}

/**
 * Bytes GDAL fetches per HTTP range request on /vsiaz/ (CPL_VSIL_CURL_CHUNK_SIZE) unless the
 * operator set it; GDAL reads it once per process, so it is set when this module loads. GDAL's
 * 16 KB makes a sequential read of a blob (a GeoPackage's FID range, a raster's strips) hundreds
 * of small requests: reading 100,000 polygons (22 MB of a GeoPackage) took 115-185 requests and
 * 0.6-0.9 s of Azurite's CPU, against 12-17 requests and 0.24-0.33 s at 512 KB, and 0.8 s
 * instead of 1.0-1.4 s end to end (ogr2ogr from /vsiaz/ into PostgreSQL, same machine).
 */
export const DEFAULT_VSI_CHUNK_SIZE = 512 * 1024;

if (!process.env['CPL_VSIL_CURL_CHUNK_SIZE'] && !gdal.config.get('CPL_VSIL_CURL_CHUNK_SIZE')) {
  gdal.config.set('CPL_VSIL_CURL_CHUNK_SIZE', String(DEFAULT_VSI_CHUNK_SIZE));
}

/**
 * Applies process-wide GDAL settings: the given options, and the block cache of GDAL's programs
 * (this process's own is fixed when the module loads). (Directory
 * scans on open stay on: drivers such as Shapefile find their sidecar files through them, and
 * these settings are shared by every job in the worker.)
 *
 * @example
 *   configureGdal({ cacheMaxMb: 256, options: gdalConfigFor(storageConfig) });
 */
export function configureGdal(opts: GdalSetupOptions = {}): void {
  const settings: Record<string, string> = {};
  for (const [key, value] of Object.entries(opts.options ?? {})) {
    if (value !== undefined) settings[key] = value;
  }
  // Not GDAL_CACHEMAX: this process's cache is set once, at load; that figure is for GDAL's programs.
  delete settings['GDAL_CACHEMAX'];
  for (const [key, value] of Object.entries(settings)) {
    gdal.config.set(key, value);
  }
  applied = {
    ...applied,
    ...settings,
    GDAL_CACHEMAX: opts.cacheMaxMb ? String(opts.cacheMaxMb) : programCacheMaxMb(),
  };
}

/** The settings applied so far by {@link configureGdal} (for logs and tests). */
export function gdalSettings(): Readonly<Record<string, string>> {
  return applied;
}

/** Settings set when this module loads (see above), carried into GDAL programs run as children. */
const LOAD_TIME_KEYS = ['CPL_VSIL_CURL_CHUNK_SIZE'] as const;

/**
 * The environment of a GDAL command-line program run by this process (`runGdalCli`): this
 * process's environment plus every GDAL setting applied here (block cache, /vsiaz/ credentials
 * and network budgets), so the program reads storage and bounds its memory exactly as this
 * process does. Credentials go through the environment, never the command line.
 */
export function gdalChildEnv(): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env };
  for (const key of LOAD_TIME_KEYS) {
    const value = gdal.config.get(key);
    if (value) env[key] = value;
  }
  return { ...env, ...applied, GDAL_CACHEMAX: programCacheMaxMb() };
}

/** Number of CPUs GDAL may use for compression and warping. */
export function gdalThreads(): number {
  return Math.max(1, os.availableParallelism());
}
