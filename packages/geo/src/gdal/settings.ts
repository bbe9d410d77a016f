import os from 'node:os';
import gdal from 'gdal-async';

/** Options for {@link configureGdal}. */
export interface GdalSetupOptions {
  /**
   * GDAL block cache in MB (GDAL_CACHEMAX). GDAL's default is 5% of RAM per process, which
   * is not a bound we can reason about; a fixed figure keeps a worker converting a 2 GB
   * raster well under 1 GB RSS. Default: the GDAL_CACHEMAX environment variable, else 256.
   * GDAL only honours it before the first raster read of the process.
   */
  cacheMaxMb?: number;
  /** GDAL configuration options to apply, e.g. the /vsiaz/ settings of the storage config. */
  options?: Record<string, string | undefined>;
}

let applied: Record<string, string> = {};

/** Default GDAL block cache (MB) when the operator has not set GDAL_CACHEMAX. */
export const DEFAULT_GDAL_CACHEMAX_MB = 256;

// GDAL reads GDAL_CACHEMAX once, on the first block-cache use of the process: set a bounded
// default as soon as this module loads, before any raster is read, unless the operator chose one.
if (!process.env['GDAL_CACHEMAX'] && !gdal.config.get('GDAL_CACHEMAX')) {
  gdal.config.set('GDAL_CACHEMAX', String(DEFAULT_GDAL_CACHEMAX_MB));
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
 * Applies process-wide GDAL settings: a bounded block cache and the given options. (Directory
 * scans on open stay on: drivers such as Shapefile find their sidecar files through them, and
 * these settings are shared by every job in the worker.)
 *
 * @example
 *   configureGdal({ cacheMaxMb: 256, options: gdalConfigFor(storageConfig) });
 */
export function configureGdal(opts: GdalSetupOptions = {}): void {
  const settings: Record<string, string> = {
    GDAL_CACHEMAX: opts.cacheMaxMb
      ? String(opts.cacheMaxMb)
      : process.env['GDAL_CACHEMAX'] || String(DEFAULT_GDAL_CACHEMAX_MB),
  };
  for (const [key, value] of Object.entries(opts.options ?? {})) {
    if (value !== undefined) settings[key] = value;
  }
  for (const [key, value] of Object.entries(settings)) {
    gdal.config.set(key, value);
  }
  applied = { ...applied, ...settings };
}

/** The settings applied so far by {@link configureGdal} (for logs and tests). */
export function gdalSettings(): Readonly<Record<string, string>> {
  return applied;
}

/** Settings set when this module loads (see above), carried into GDAL programs run as children. */
const LOAD_TIME_KEYS = ['GDAL_CACHEMAX', 'CPL_VSIL_CURL_CHUNK_SIZE'] as const;

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
  return { ...env, ...applied };
}

/** Number of CPUs GDAL may use for compression and warping. */
export function gdalThreads(): number {
  return Math.max(1, os.availableParallelism());
}
