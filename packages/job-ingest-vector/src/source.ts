import gdal from 'gdal-async';
import { permanentError, type Services } from '@coremachine/core-machine';
import { extensionOf, formatOf, openVectorLayer, type OpenedLayer, type SourceOptions, type VectorFormat } from '@coremachine/geo/vector';
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
 * Points GDAL's /vsiaz/ at the machine's storage. The options are process-wide and never
 * written anywhere (for key auth they hold the key); set again only when the storage changes.
 */
function configureGdal(services: Services): void {
  const options = gdalConfigFor(services.storage.config);
  const fingerprint = JSON.stringify(options);
  if (configured === fingerprint) return;
  for (const [k, v] of Object.entries(options)) gdal.config.set(k, v);
  configured = fingerprint;
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

/** Opens the job's source layer in place through /vsiaz/ (and /vsizip/ for archives). */
export async function openSource(params: Params, services: Services): Promise<OpenedLayer> {
  configureGdal(services);
  return openVectorLayer(vsiazPath(params.container_name, params.blob_name), sourceOptions(params));
}
