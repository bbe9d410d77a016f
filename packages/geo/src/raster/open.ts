import gdal from 'gdal-async';
import { classifyGdalError, gdalTaskError } from '../gdal/errors.ts';
import { rasterError } from './errors.ts';

/**
 * Opens a raster read-only (a local path or a /vsiaz/ path) and maps GDAL's failures to
 * permanent error codes: NOT_A_RASTER when no raster driver recognises the bytes (or the
 * dataset has no bands), FILE_UNREADABLE when a driver recognises it but cannot read it.
 * Network and storage failures become transient `TaskError`s (retried), their message naming
 * `label`, never the path GDAL was given.
 */
export async function openRaster(path: string, label = path): Promise<gdal.Dataset> {
  let ds: gdal.Dataset;
  try {
    ds = await gdal.openAsync(path, 'r');
  } catch (err) {
    const paths = { [path]: label };
    const c = classifyGdalError(err, paths);
    if (!c.permanent) throw gdalTaskError(err, { file: label, paths });
    if (c.kind === 'unsupported') {
      throw rasterError('NOT_A_RASTER', `${label} is not a raster GDAL can read (no driver recognises it)`, {
        file: label,
        gdal: c.message,
      });
    }
    if (c.kind === 'not_found') throw rasterError('BLOB_NOT_FOUND', `${label} does not exist`, { file: label });
    throw rasterError('FILE_UNREADABLE', `${label} could not be opened: ${c.message}`, {
      file: label,
      gdal: c.message,
    });
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
export async function readOrUnreadable<T>(label: string, read: () => Promise<T>, path?: string): Promise<T> {
  try {
    return await read();
  } catch (err) {
    const paths = path ? { [path]: label } : {};
    const c = classifyGdalError(err, paths);
    if (!c.permanent) throw gdalTaskError(err, { file: label, paths });
    throw rasterError('FILE_UNREADABLE', `${label} could not be read: ${c.message}`, { file: label, gdal: c.message });
  }
}
