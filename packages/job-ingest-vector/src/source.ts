import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { permanentError, type Services } from '@coremachine/core-machine';
import { extensionOf, formatOf, openVectorLayer, type OpenedLayer, type SourceOptions, type VectorFormat } from '@coremachine/geo/vector';
import gdal from 'gdal-async';
import { configureGdal } from '@coremachine/geo';
import { gdalConfigFor, isStorageError, vsiazPath } from '@coremachine/storage';
import type { Params } from './params.ts';

/** The format of the source: `file_extension`, else the blob name's extension. */
export function formatFor(params: Params): VectorFormat {
  const format = formatOf(params.file_extension ?? extensionOf(params.blob_name));
  if (!format) throw permanentError('UNSUPPORTED_FORMAT', `Cannot tell the format of ${params.blob_name}: set file_extension`);
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

/** Fails permanently when the blob is missing: no retry can make it appear. */
export async function assertBlobExists(params: Params, services: Services, signal?: AbortSignal): Promise<number> {
  const missing = () => permanentError('BLOB_NOT_FOUND', `${params.container_name}/${params.blob_name} does not exist`, { container: params.container_name, blob: params.blob_name });
  try {
    const stat = await services.storage.stat(params.container_name, params.blob_name, signal ? { signal } : {});
    if (!stat.exists) throw missing();
    return stat.size;
  } catch (err) {
    if (isStorageError(err, 'BLOB_NOT_FOUND') || isStorageError(err, 'CONTAINER_NOT_FOUND')) throw missing();
    throw err;
  }
}

/** Formats GDAL cannot stream from /vsiaz/ (the GML reader finds no features over HTTP). */
const DOWNLOADED: readonly VectorFormat[] = ['gml'];

/**
 * Opens the job's source layer in place through /vsiaz/ (and /vsizip/ for archives), uncached
 * across opens (see openNonCached). GML is
 * the exception: it is downloaded once to a temporary file (with its .xsd/.gfs sidecars when
 * present), streamed to disk, and removed on close.
 */
export async function openSource(params: Params, services: Services, signal?: AbortSignal): Promise<OpenedLayer> {
  useStorage(services);
  const options = sourceOptions(params);
  if (!DOWNLOADED.includes(options.format)) {
    const path = vsiazPath(params.container_name, params.blob_name);
    return openNonCached(path, () => openVectorLayer(path, options));
  }
  const dir = await mkdtemp(join(tmpdir(), 'cm-ingest-vector-'));
  try {
    const file = join(dir, basename(params.blob_name));
    await services.storage.downloadToFile(params.container_name, params.blob_name, file, signal ? { signal } : {});
    const stem = params.blob_name.replace(/\.[^./]+$/, '');
    for (const ext of ['xsd', 'gfs']) {
      const sidecar = `${stem}.${ext}`;
      const stat = await services.storage.stat(params.container_name, sidecar).catch(() => null);
      if (stat?.exists) await services.storage.downloadToFile(params.container_name, sidecar, join(dir, basename(sidecar)), signal ? { signal } : {});
    }
    const opened = await openVectorLayer(file, options);
    return { ...opened, close: () => { opened.close(); void rm(dir, { recursive: true, force: true }); } };
  } catch (err) {
    await rm(dir, { recursive: true, force: true });
    throw err;
  }
}
