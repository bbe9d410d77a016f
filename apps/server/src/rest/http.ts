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
      'access-control-allow-origin': '*',
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

const MAX_BODY = 1024 * 1024;

/** Reads a JSON request body of at most 1 MiB; 413 above, 400 when it is not JSON. */
export async function readJson(req: IncomingMessage): Promise<unknown> {
  let size = 0;
  const chunks: Buffer[] = [];
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > MAX_BODY) throw new HttpError(413, 'PayloadTooLarge', `request body is larger than ${MAX_BODY} bytes`);
    chunks.push(chunk);
  }
  try {
    return JSON.parse(Buffer.concat(chunks).toString('utf8') || '{}');
  } catch (err) {
    throw new HttpError(400, 'InvalidParameterValue', `request body is not JSON: ${(err as Error).message}`);
  }
}
