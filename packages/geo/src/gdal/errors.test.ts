import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import gdal from 'gdal-async';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TaskError } from '@coremachine/core-machine';
import { classifyGdalError, gdalTaskError, scrubPaths } from './errors.ts';

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'cm-gdal-errors-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

/** What GDAL really throws for `call`. */
async function thrown(call: () => Promise<unknown> | unknown): Promise<unknown> {
  try {
    await call();
  } catch (err) {
    return err;
  }
  throw new Error('expected GDAL to throw');
}

describe('classifyGdalError on errors GDAL and PROJ raise', () => {
  it('a file no driver recognises is unsupported and permanent', async () => {
    const file = path.join(dir, 'notes.tif');
    await writeFile(file, 'just some text, not a raster');
    const err = await thrown(() => gdal.openAsync(file));
    const c = classifyGdalError(err, { [file]: 'bronze/notes.tif' });
    expect(c).toMatchObject({ kind: 'unsupported', permanent: true });
    expect(c.message).toContain('bronze/notes.tif');
    expect(c.message).not.toContain(dir);
  });

  it('a truncated GeoTIFF is corrupt and permanent', async () => {
    const file = path.join(dir, 'full.tif');
    const ds = gdal.open(file, 'w', 'GTiff', 64, 64, 1, gdal.GDT_Float32);
    ds.bands.get(1).pixels.write(0, 0, 64, 64, new Float32Array(64 * 64).fill(3));
    ds.close();
    const bytes = await import('node:fs/promises').then((fs) => fs.readFile(file));
    const cut = path.join(dir, 'cut.tif');
    await writeFile(cut, bytes.subarray(0, 300));
    const err = await thrown(async () => {
      const d = await gdal.openAsync(cut);
      await d.bands.get(1).pixels.readAsync(0, 0, 64, 64);
    });
    expect(classifyGdalError(err)).toMatchObject({ kind: 'corrupt', permanent: true });
  });

  it('PROJ failing to relate a local engineering CRS to WGS 84 is a CRS error, permanent', async () => {
    const local = gdal.SpatialReference.fromWKT(
      'LOCAL_CS["Cartesian (Meter)",LOCAL_DATUM["Local Datum",0],UNIT["metre",1],AXIS["X",EAST],AXIS["Y",NORTH]]',
    );
    const err = await thrown(() => new gdal.CoordinateTransformation(local, gdal.SpatialReference.fromEPSG(4326)));
    expect(classifyGdalError(err)).toMatchObject({ kind: 'crs', permanent: true });
  });

  it('an illegal window is an illegal argument, permanent', async () => {
    const file = path.join(dir, 'small.tif');
    gdal.open(file, 'w', 'GTiff', 8, 8, 1, gdal.GDT_Byte).close();
    const ds = await gdal.openAsync(file);
    const err = await thrown(() => ds.bands.get(1).pixels.readAsync(0, 0, 100, 100));
    ds.close();
    expect(classifyGdalError(err).permanent).toBe(true);
  });

  it.each([
    ['HTTP response code: 503 - Server Busy', 'throttled'],
    ['HTTP error code : 429', 'throttled'],
    ['HTTP response code: 500', 'http'],
    ['HTTP error code: 502 Bad Gateway', 'http'],
    ['Operation timed out after 30001 milliseconds', 'timeout'],
    ['Could not resolve host: devstoreaccount1.blob.core.windows.net', 'io'],
    ['Connection refused', 'io'],
    ['/vsiaz/bronze/x.tif: I/O error', 'io'],
    ['something GDAL never said before', 'unclassified'],
  ] as const)('%s → %s, transient', (message, kind) => {
    expect(classifyGdalError(new Error(message))).toMatchObject({ kind, permanent: false });
  });
});

describe('gdalTaskError', () => {
  it('names the blob, never the server path, and keeps a structured detail and the cause', () => {
    const original = new Error('/tmp/cm-cog-1234/src.tif: not recognized as a supported file format.');
    const err = gdalTaskError(original, {
      file: 'bronze/x.tif',
      paths: { '/tmp/cm-cog-1234/src.tif': 'bronze/x.tif' },
    });
    expect(err).toBeInstanceOf(TaskError);
    expect(err).toMatchObject({ code: 'UNSUPPORTED_FORMAT', permanent: true });
    expect(err.message).toBe('bronze/x.tif: not recognized as a supported file format.');
    expect(err.detail).toEqual({
      file: 'bronze/x.tif',
      kind: 'unsupported',
      gdal: 'bronze/x.tif: not recognized as a supported file format.',
    });
    expect(err.cause).toBe(original);
  });

  it('an unclassified error stays transient with its message as the cause', () => {
    const err = gdalTaskError(new Error('odd failure'), { file: 'bronze/x.tif' });
    expect(err).toMatchObject({ code: 'GDAL_ERROR', permanent: false, message: 'bronze/x.tif: odd failure' });
  });

  it('an error GDAL did not raise keeps its own classification: a coded error its code, PostgreSQL its SQLSTATE', () => {
    const storage = Object.assign(new Error('a storage call exceeded its 4000 ms budget (timed out)'), {
      code: 'STORAGE_TIMEOUT',
      permanent: false,
    });
    expect(gdalTaskError(storage, { file: 'bronze/x.tif' })).toMatchObject({
      code: 'STORAGE_TIMEOUT',
      permanent: false,
      cause: storage,
    });
    // Read as GDAL's message this was BLOB_NOT_FOUND, permanent ("does not exist").
    const missing = Object.assign(new Error('relation "stac.collections" does not exist'), {
      code: '42P01',
      severity: 'ERROR',
    });
    expect(gdalTaskError(missing, { file: 'bronze/x.tif' })).toMatchObject({
      code: 'TASK_ERROR',
      permanent: false,
      message: 'bronze/x.tif: PostgreSQL: relation "stac.collections" does not exist',
      detail: { file: 'bronze/x.tif', sqlstate: '42P01' },
    });
    const restart = Object.assign(new Error('terminating connection due to administrator command'), {
      code: '57P01',
      severity: 'FATAL',
    });
    expect(gdalTaskError(restart, { file: 'bronze/x.tif' })).toMatchObject({
      code: 'CM_ERR_DATABASE_UNREACHABLE',
      permanent: false,
    });
  });

  it('scrubPaths turns /vsiaz/ paths into container/blob and other absolute paths into file names', () => {
    expect(scrubPaths("open '/vsiaz/bronze/dem/a.tif' failed")).toBe("open 'bronze/dem/a.tif' failed");
    expect(scrubPaths('at /srv/app/packages/geo/src/raster/bounds.ts:38:14')).toBe('at bounds.ts:38:14');
    expect(scrubPaths('see /tmp/cm-x/y/')).toBe('see y');
  });
});
