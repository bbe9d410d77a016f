import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { permanentError, type Services } from '@coremachine/core-machine';
import {
  extensionOf,
  formatOf,
  openVectorLayer,
  type OpenedLayer,
  type SourceOptions,
  type VectorFormat,
} from '@coremachine/geo/vector';
import gdal from 'gdal-async';
import { configureGdal } from '@coremachine/geo';
import { acquireLocalCopy } from './local-copy.ts';
import { DEFAULT_LOCAL_COPY_MAX_BYTES } from './services.ts';
import { gdalConfigFor, isStorageError, vsiazPath } from '@coremachine/storage';
import type { Params } from './params.ts';

/** The format of the source: `file_extension`, else the blob name's extension. */
export function formatFor(params: Params): VectorFormat {
  const format = formatOf(params.file_extension ?? extensionOf(params.blob_name));
  if (!format)
    throw permanentError('UNSUPPORTED_FORMAT', `Cannot tell the format of ${params.blob_name}: set file_extension`);
  return format;
}

export function sourceOptions(params: Params): SourceOptions {
  return {
    format: formatFor(params),
    layer: params.layer,
    shpName: params.shp_name,
    kmlName: params.kml_name,
    encoding: params.encoding,
    latName: params.lat_name,
    lonName: params.lon_name,
    wktColumn: params.wkt_column,
  };
}

let configured: string | undefined;

/**
 * Points GDAL's /vsiaz/ at the machine's storage. The options are process-wide (every job
 * reading /vsiaz/ needs them) and never written anywhere (for key auth they hold the key); set
 * again only when the storage changes.
 */
function useStorage(services: Services): void {
  const options = gdalConfigFor(services.storage.config);
  const fingerprint = JSON.stringify(options);
  if (configured === fingerprint) return;
  configureGdal({ options });
  configured = fingerprint;
}

const NON_CACHED = 'CPL_VSIL_CURL_NON_CACHED';

/**
 * Runs a GDAL open with `path` (and its sidecars, which share the prefix) listed in
 * CPL_VSIL_CURL_NON_CACHED until the open settles. GDAL reads the option when a file is opened
 * and forgets the file's cached size and content when that handle closes, so a blob replaced
 * under the same name is never read stale by a long-running worker; other paths, and other
 * jobs, keep GDAL's cache. Opens run side by side: each adds its own entry to the list and
 * removes one entry of its path afterwards, whatever the others did meanwhile.
 */
async function openNonCached<T>(path: string, open: () => Promise<T>): Promise<T> {
  const current = gdal.config.get(NON_CACHED);
  gdal.config.set(NON_CACHED, current ? `${current}:${path}` : path);
  try {
    return await open();
  } finally {
    const entries = (gdal.config.get(NON_CACHED) ?? '').split(':');
    const i = entries.lastIndexOf(path);
    if (i >= 0) entries.splice(i, 1);
    gdal.config.set(NON_CACHED, entries.some(Boolean) ? entries.join(':') : null);
  }
}

/** The blob's size and ETag; BLOB_NOT_FOUND (permanent) when it is missing: no retry can make it appear. */
export async function statSource(
  params: Params,
  services: Services,
  signal?: AbortSignal,
): Promise<{ size: number; etag: string }> {
  try {
    const stat = await services.storage.stat(params.container_name, params.blob_name, signal ? { signal } : {});
    if (!stat.exists) throw missingBlob(params);
    return { size: stat.size, etag: stat.etag };
  } catch (err) {
    if (isStorageError(err, 'BLOB_NOT_FOUND') || isStorageError(err, 'CONTAINER_NOT_FOUND')) throw missingBlob(params);
    throw err;
  }
}

const missingBlob = (params: Params) =>
  permanentError('BLOB_NOT_FOUND', `${params.container_name}/${params.blob_name} does not exist`, {
    container: params.container_name,
    blob: params.blob_name,
  });

/** Formats GDAL cannot stream from /vsiaz/ (the GML reader finds no features over HTTP). */
const DOWNLOADED: readonly VectorFormat[] = ['gml'];
/** Formats held in one blob, which a local copy can stand for (a bare .shp needs its sidecar blobs). */
const SINGLE_BLOB: readonly VectorFormat[] = ['geojson', 'json', 'zip', 'gpkg', 'csv', 'kml', 'kmz', 'fgb'];

export interface OpenSourceOptions {
  /** The version prepare planned the chunks on: another one fails with SOURCE_CHANGED. */
  expectedEtag?: string | undefined;
}

export interface OpenedSource extends OpenedLayer {
  /** The version read: load tasks check that it is still the one prepare planned. */
  etag: string;
  size: number;
}

/**
 * Opens the job's source layer. With `expectedEtag` (the version prepare planned the chunks on),
 * a blob replaced since fails permanently with SOURCE_CHANGED. Single-blob formats up to
 * `services.vector.localCopyMaxBytes` are read from the worker's local copy (one GET per blob
 * version and worker, see local-copy.ts); larger ones, and bare shapefiles, in place through
 * /vsiaz/ (and /vsizip/ for archives), uncached across opens (see openNonCached). GML is
 * downloaded to a temporary file of its own (with its .xsd/.gfs sidecars when present),
 * removed on close. Error messages name the blob, never a local path.
 */
export async function openSource(
  params: Params,
  services: Services,
  signal?: AbortSignal,
  opts: OpenSourceOptions = {},
): Promise<OpenedSource> {
  useStorage(services);
  const options = sourceOptions(params);
  const { size, etag } = await statSource(params, services, signal);
  if (opts.expectedEtag && etag !== opts.expectedEtag) {
    throw permanentError(
      'SOURCE_CHANGED',
      `${params.container_name}/${params.blob_name} was replaced after this job planned its chunks; submit the job again`,
      { container: params.container_name, blob: params.blob_name },
    );
  }
  const maxCopy = services.vector?.localCopyMaxBytes ?? DEFAULT_LOCAL_COPY_MAX_BYTES;
  if (SINGLE_BLOB.includes(options.format) && size <= maxCopy) {
    const copy = await acquireLocalCopy(
      services.storage,
      params.container_name,
      params.blob_name,
      etag,
      options.format,
    ).catch((err: unknown) => {
      if (isStorageError(err, 'BLOB_NOT_FOUND') || isStorageError(err, 'CONTAINER_NOT_FOUND'))
        throw missingBlob(params);
      throw err;
    });
    try {
      const opened = await openVectorLayer(copy.path, options);
      return {
        ...opened,
        etag,
        size,
        close: () => {
          opened.close();
          copy.release();
        },
      };
    } catch (err) {
      copy.release();
      throw nameTheBlob(err, copy.path, params);
    }
  }
  if (!DOWNLOADED.includes(options.format)) {
    const path = vsiazPath(params.container_name, params.blob_name);
    return { ...(await openNonCached(path, () => openVectorLayer(path, options))), etag, size };
  }
  const dir = await mkdtemp(join(tmpdir(), 'cm-ingest-vector-'));
  const file = join(dir, basename(params.blob_name));
  try {
    await services.storage.downloadToFile(params.container_name, params.blob_name, file, {
      etag,
      ...(signal ? { signal } : {}),
    });
    const stem = params.blob_name.replace(/\.[^./]+$/, '');
    for (const ext of ['xsd', 'gfs']) {
      const sidecar = `${stem}.${ext}`;
      const stat = await services.storage.stat(params.container_name, sidecar).catch(() => null);
      if (stat?.exists)
        await services.storage.downloadToFile(
          params.container_name,
          sidecar,
          join(dir, basename(sidecar)),
          signal ? { signal } : {},
        );
    }
    const opened = await openVectorLayer(file, options);
    return {
      ...opened,
      etag,
      size,
      close: () => {
        opened.close();
        void rm(dir, { recursive: true, force: true });
      },
    };
  } catch (err) {
    await rm(dir, { recursive: true, force: true });
    throw nameTheBlob(err, file, params);
  }
}

/** The same error with a local file's path replaced by the blob's name in its message. */
function nameTheBlob(err: unknown, local: string, params: Params): unknown {
  if (!(err instanceof Error) || !err.message.includes(local)) return err;
  err.message = err.message.split(local).join(`${params.container_name}/${params.blob_name}`);
  return err;
}
