import os from 'node:os';
import gdal from 'gdal-async';

/** Options for {@link configureGdal}. */
export interface GdalSetupOptions {
  /**
   * GDAL block cache in MB (GDAL_CACHEMAX). GDAL's default is 5% of RAM per process, which
   * is not a bound we can reason about; a fixed figure keeps a worker converting a 2 GB
   * raster well under 1 GB RSS. Default 256.
   */
  cacheMaxMb?: number;
  /** GDAL configuration options to apply, e.g. the /vsiaz/ settings of the storage config. */
  options?: Record<string, string | undefined>;
}

let applied: Record<string, string> = {};

/**
 * Applies process-wide GDAL settings: a bounded block cache, no directory scans on open (a
 * sidecar lookup on /vsiaz/ costs one HTTP request per guessed name), and the given options.
 *
 * @example
 *   configureGdal({ cacheMaxMb: 256, options: gdalConfigFor(storageConfig) });
 */
export function configureGdal(opts: GdalSetupOptions = {}): void {
  const settings: Record<string, string> = {
    GDAL_CACHEMAX: String(opts.cacheMaxMb ?? 256),
    GDAL_DISABLE_READDIR_ON_OPEN: 'EMPTY_DIR',
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

/** Number of CPUs GDAL may use for compression and warping. */
export function gdalThreads(): number {
  return Math.max(1, os.availableParallelism());
}
