import { rm } from 'node:fs/promises';
import gdal from 'gdal-async';
import { gdalTaskError } from '../gdal/errors.ts';

export interface AssembleCogOptions {
  /** The windows as GDAL opens them (`/vsiaz/<container>/<prefix>/r0000_c0000.tif`, ...). */
  windows: readonly string[];
  /** Local path of the COG to write. */
  destination: string;
  /** COG driver creation options (`cogCreationOptions`). */
  creationOptions: readonly string[];
  /** Label for messages (the source or mosaic the COG is made of). */
  label: string;
  onProgress?: (fraction: number, note: string) => void;
}

/**
 * Assembles windows into one COG: a VRT over the windows, read in place through `/vsiaz/`,
 * then GDAL's COG driver, which computes the overviews from the full-resolution pixels. Only
 * the COG itself (and the driver's temporary overview file) touch local disk.
 */
export async function assembleCog(opts: AssembleCogOptions): Promise<void> {
  const vrtPath = `${opts.destination}.vrt`;
  const paths = Object.fromEntries(opts.windows.map((w) => [w, opts.label]));
  let vrt: gdal.Dataset | null = null;
  try {
    try {
      vrt = await gdal.buildVRTAsync(vrtPath, [...opts.windows], []);
      const out = await gdal.translateAsync(
        opts.destination,
        vrt,
        ['-of', 'COG', ...opts.creationOptions.flatMap((o) => ['-co', o])],
        opts.onProgress ? { progress_cb: (c: number) => opts.onProgress!(c, 'writing COG') } : undefined,
      );
      out.close();
    } catch (err) {
      throw gdalTaskError(err, { file: opts.label, paths, action: 'assembling the COG of' });
    }
  } finally {
    vrt?.close();
    await rm(vrtPath, { force: true });
  }
}
