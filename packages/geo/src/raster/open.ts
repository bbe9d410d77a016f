import gdal from 'gdal-async';
import { isTransientGdalError, rasterError } from './errors.ts';

/**
 * Opens a raster read-only (a local path or a /vsiaz/ path) and maps GDAL's failures to
 * permanent error codes: NOT_A_RASTER when no raster driver recognises the bytes (or the
 * dataset has no bands), FILE_UNREADABLE when a driver recognises it but cannot read it.
 * Network failures are rethrown as they are so that the task is retried.
 */
export async function openRaster(path: string, label = path): Promise<gdal.Dataset> {
  let ds: gdal.Dataset;
  try {
    ds = await gdal.openAsync(path, 'r');
  } catch (err) {
    const message = err instanceof Error ? err.message : String(err);
    if (isTransientGdalError(message)) throw err;
    if (/not recognized as (being in )?a supported (file|dataset) format/i.test(message)) {
      throw rasterError('NOT_A_RASTER', `${label} is not a raster GDAL can read (no driver recognises it)`, {
        gdal: message,
      });
    }
    throw rasterError('FILE_UNREADABLE', `${label} could not be opened: ${message}`, { gdal: message });
  }
  if (ds.bands.count() === 0 || ds.rasterSize.x === 0 || ds.rasterSize.y === 0) {
    const driver = ds.driver.description;
    ds.close();
    throw rasterError('NOT_A_RASTER', `${label} has no raster bands (opened by GDAL driver ${driver})`, { driver });
  }
  return ds;
}

/**
 * Runs a read on an open raster and maps a decoding failure (truncated file, corrupt tile)
 * to FILE_UNREADABLE, keeping network errors transient.
 */
export async function readOrUnreadable<T>(label: string, read: () => Promise<T>): Promise<T> {
  try {
    return await read();
  } catch (err) {
    const message = err instanceof Error ? err.message : String(err);
    if (isTransientGdalError(message)) throw err;
    throw rasterError('FILE_UNREADABLE', `${label} could not be read: ${message}`, { gdal: message });
  }
}
