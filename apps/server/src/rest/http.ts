/** Small HTTP helpers shared by the REST routes (health, STAC API, OGC API Features). */
import type { IncomingMessage, ServerResponse } from 'node:http';

/** A REST handler: returns true when it answered the request. */
export type RestRoute = (req: IncomingMessage, res: ServerResponse, url: URL) => Promise<boolean>;

/** An error answered as `{ code, description }` with its HTTP status (OGC API style). */
export class HttpError extends Error {
  readonly status: number;
  readonly code: string;
  constructor(status: number, code: string, message: string) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

export function sendJson(res: ServerResponse, status: number, body: unknown, contentType = 'application/json'): true {
  const text = JSON.stringify(body);
  res
    .writeHead(status, {
      'content-type': contentType,
      'content-length': Buffer.byteLength(text),
    })
    .end(text);
  return true;
}

/** `http(s)://host[:port]<mount>` as the client reached us (X-Forwarded-* behind a proxy). */
export function baseUrl(req: IncomingMessage, mount: string): string {
  const first = (v: string | string[] | undefined) => (Array.isArray(v) ? v[0] : v)?.split(',')[0]?.trim();
  const proto = first(req.headers['x-forwarded-proto']) ?? 'http';
  const host = first(req.headers['x-forwarded-host']) ?? req.headers.host ?? '127.0.0.1';
  return `${proto === 'https' ? 'https' : 'http'}://${host}${mount}`;
}

const DEFAULT_MAX_BODY = 1024 * 1024;
/** The body limit of each request (CM_MAX_BODY_BYTES, set by the edge); 1 MiB when unset. */
export const requestBodyLimit = new WeakMap<IncomingMessage, number>();

/**
 * Reads a JSON request body up to the request's limit, counted as it streams; 413 past it (the
 * rest of the body is read and dropped, not held, so the client gets the answer), 400 when not JSON.
 */
export async function readJson(req: IncomingMessage): Promise<unknown> {
  const MAX_BODY = requestBodyLimit.get(req) ?? DEFAULT_MAX_BODY;
  const chunks: Buffer[] = [];
  await new Promise<void>((resolve, reject) => {
    let size = 0;
    const onData = (chunk: Buffer) => {
      size += chunk.length;
      if (size <= MAX_BODY) return void chunks.push(chunk);
      chunks.length = 0;
      req.off('data', onData).off('end', resolve).resume();
      reject(
        new HttpError(413, 'PayloadTooLarge', `request body is larger than ${MAX_BODY} bytes (CM_MAX_BODY_BYTES)`),
      );
    };
    req.on('data', onData).once('end', resolve).once('error', reject);
  });
  try {
    return JSON.parse(Buffer.concat(chunks).toString('utf8') || '{}');
  } catch (err) {
    throw new HttpError(400, 'InvalidParameterValue', `request body is not JSON: ${(err as Error).message}`);
  }
}
