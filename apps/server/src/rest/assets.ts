/**
 * Asset route: opens any blob of the configured storage for a client that may read the STAC
 * catalogue (the edge gives GET/HEAD under /stac/ the `read` role, or none when the catalogue is
 * public). Item hrefs stay the stable blob URLs; a client that gets 403 from a private container
 * opens `/stac/assets/<container>/<blob path>` instead:
 * - on Azure with an account key, a 302 to a signed read-only URL of the blob valid for
 *   {@link SIGNED_URL_SECONDS} (the URL is made per request and never stored);
 * - otherwise (Azurite, managed identities, SAS-only connection strings) the blob is streamed
 *   through the server, with HTTP
 *   range requests (206, `Content-Range`), HEAD, ETag and `If-None-Match`: what GDAL's /vsicurl/,
 *   rasterio and QGIS use to read a COG's header, overviews and tiles without the whole file.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { pipeline } from 'node:stream/promises';
import { createHmac } from 'node:crypto';
import { isStorageError, parseConnectionString, type BlobStorage, type StorageConfig } from '@coremachine/storage';
import { sendJson, type RestRoute } from './http.ts';

export const ASSETS_PREFIX = '/stac/assets/';
/** Lifetime of a signed redirect URL. */
export const SIGNED_URL_SECONDS = 300;

/** Makes a short-lived signed read URL for a blob, or null when the storage cannot sign. */
export type SignBlobUrl = (container: string, blob: string, expiresOn: Date) => Promise<string | null>;

/** `bytes=a-b`, `bytes=a-`, `bytes=-n` → [start, end] inclusive within `size`; null when unsatisfiable or not one range. */
export function parseRange(header: string, size: number): [number, number] | null | 'ignore' {
  const m = /^bytes=(\d*)-(\d*)$/.exec(header.trim());
  if (!m || (m[1] === '' && m[2] === '')) return 'ignore'; // several ranges or malformed: the whole blob (RFC 9110 allows it)
  if (m[1] === '') {
    const n = Number(m[2]);
    if (n === 0) return null;
    return [Math.max(0, size - n), size - 1];
  }
  const start = Number(m[1]);
  const end = m[2] === '' ? size - 1 : Math.min(Number(m[2]), size - 1);
  if (start >= size || end < start) return null;
  return [start, end];
}

/**
 * The asset route.
 * @example
 *   const assets = assetRoutes({ storage });
 *   routes.unshift(assets); // before the STAC API, which answers 404 for other /stac/ paths
 */
export function assetRoutes(deps: { storage: BlobStorage; sign?: SignBlobUrl }): RestRoute {
  const { storage } = deps;
  return async (req: IncomingMessage, res: ServerResponse, url: URL) => {
    if (!url.pathname.startsWith(ASSETS_PREFIX)) return false;
    const method = req.method ?? 'GET';
    if (method !== 'GET' && method !== 'HEAD') {
      res.setHeader('allow', 'GET, HEAD');
      return sendJson(res, 405, { code: 'MethodNotAllowed', description: 'assets are read with GET or HEAD' });
    }
    let container: string;
    let blob: string;
    try {
      const rest = url.pathname.slice(ASSETS_PREFIX.length);
      const slash = rest.indexOf('/');
      container = decodeURIComponent(slash < 0 ? rest : rest.slice(0, slash));
      blob =
        slash < 0
          ? ''
          : rest
              .slice(slash + 1)
              .split('/')
              .map(decodeURIComponent)
              .join('/');
    } catch {
      return sendJson(res, 400, {
        code: 'InvalidParameterValue',
        description: 'the asset path is not valid URL encoding',
      });
    }
    if (!container || !blob)
      return sendJson(res, 400, {
        code: 'InvalidParameterValue',
        description: `use ${ASSETS_PREFIX}<container>/<blob path>`,
      });

    let stat;
    try {
      stat = await storage.stat(container, blob);
    } catch (err) {
      if (isStorageError(err, 'CONTAINER_NOT_FOUND') || isStorageError(err, 'BLOB_NOT_FOUND')) stat = null;
      else if (isStorageError(err, 'STORAGE_INVALID_NAME'))
        return sendJson(res, 400, { code: 'InvalidParameterValue', description: (err as Error).message });
      else throw err;
    }
    if (!stat || !stat.exists)
      return sendJson(res, 404, { code: 'NotFound', description: `asset ${container}/${blob} does not exist` });

    if (deps.sign) {
      const signed = await deps.sign(container, blob, new Date(Date.now() + SIGNED_URL_SECONDS * 1000));
      if (signed) {
        res.writeHead(302, { location: signed, 'cache-control': 'no-store', 'access-control-allow-origin': '*' }).end();
        return true;
      }
    }

    const headers: Record<string, string | number> = {
      'accept-ranges': 'bytes',
      'content-type': stat.contentType ?? 'application/octet-stream',
      etag: stat.etag,
      'last-modified': stat.lastModified.toUTCString(),
      'cache-control': 'private, max-age=60',
      'access-control-allow-origin': '*',
      'access-control-expose-headers': 'content-range, content-length, etag, accept-ranges',
    };
    if (req.headers['if-none-match'] === stat.etag) {
      res.writeHead(304, headers).end();
      return true;
    }
    const rangeHeader = req.headers.range;
    const range = rangeHeader ? parseRange(rangeHeader, stat.size) : 'ignore';
    if (range === null) {
      res.writeHead(416, { ...headers, 'content-range': `bytes */${stat.size}` }).end();
      return true;
    }
    const [start, end] = range === 'ignore' ? [0, stat.size - 1] : range;
    const length = stat.size === 0 ? 0 : end - start + 1;
    const status = range === 'ignore' ? 200 : 206;
    if (status === 206) res.setHeader('content-range', `bytes ${start}-${end}/${stat.size}`);
    res.writeHead(status, { ...headers, 'content-length': length });
    if (method === 'HEAD' || length === 0) {
      res.end();
      return true;
    }
    const abort = new AbortController();
    res.on('close', () => abort.abort());
    try {
      const body = await storage.readStream(container, blob, { offset: start, count: length, signal: abort.signal });
      await pipeline(body, res);
    } catch (err) {
      // Headers are sent: the client sees a short body (the client hung up, or storage failed).
      if (!abort.signal.aborted) res.destroy(err as Error);
    }
    return true;
  };
}

/** Service SAS version the signatures follow (string-to-sign of 2020-12-06 and later). */
const SAS_VERSION = '2022-11-02';

/**
 * A read-only service SAS URL for one blob, signed with the account key (HMAC-SHA256 of the
 * string-to-sign of SAS version 2020-12-06 and later). Made per request and never stored.
 * @param blobUrl the blob's URL without query (`storage.blobUrl(container, blob)`).
 * @param protocols `https` (default) or `https,http` (a local emulator).
 */
export function serviceSasUrl(opts: {
  account: string;
  key: string;
  blobUrl: string;
  container: string;
  blob: string;
  expiresOn: Date;
  protocols?: 'https' | 'https,http';
}): string {
  const iso = (d: Date) => d.toISOString().replace(/\.\d{3}Z$/, 'Z');
  const start = iso(new Date(Date.now() - 60_000));
  const expiry = iso(opts.expiresOn);
  const protocols = opts.protocols ?? 'https';
  const resource = `/blob/${opts.account}/${opts.container}/${opts.blob}`;
  const toSign = ['r', start, expiry, resource, '', '', protocols, SAS_VERSION, 'b', '', '', '', '', '', '', ''].join(
    '\n',
  );
  const sig = createHmac('sha256', Buffer.from(opts.key, 'base64')).update(toSign, 'utf8').digest('base64');
  const query = new URLSearchParams({ sv: SAS_VERSION, st: start, se: expiry, sr: 'b', sp: 'r', spr: protocols, sig });
  return `${opts.blobUrl}?${query}`;
}

/**
 * A {@link SignBlobUrl} for the storage configuration: read-only service SAS URLs when a
 * connection string carries an account key; undefined (the route streams) for Azurite, whose
 * URL a client may not reach, for SAS-only connection strings and for managed identities.
 */
export function blobSigner(config: StorageConfig, storage: BlobStorage): SignBlobUrl | undefined {
  if (config.kind !== 'connection_string') return undefined;
  const { AccountName: account, AccountKey: key } = parseConnectionString(config.connectionString);
  if (!account || !key || account === 'devstoreaccount1') return undefined;
  return (container, blob, expiresOn) =>
    Promise.resolve(
      serviceSasUrl({ account, key, blobUrl: storage.blobUrl(container, blob), container, blob, expiresOn }),
    );
}
