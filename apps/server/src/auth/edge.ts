/**
 * The edge of the HTTP server, before any route: body size (413), Host header (DNS rebinding),
 * CORS allow-list, bearer tokens (401 for a wrong one) and the role each REST route needs.
 * tRPC procedures and /api/v1 check their own role (trpc.ts) with the principal found here.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { isIP } from 'node:net';
import type { Env } from '../env.ts';
import { baseUrl, requestBodyLimit, sendJson } from '../rest/http.ts';
import {
  ANONYMOUS,
  CONFIG_TOKEN_NAME,
  roleAllows,
  sameToken,
  type Principal,
  type Role,
  type TokenStore,
} from './tokens.ts';

const principals = new WeakMap<IncomingMessage, Principal | null>();
/** The principal the edge found for this request (null: no token presented). */
export const principalOf = (req: IncomingMessage): Principal | null => principals.get(req) ?? null;

const SAFE = new Set(['GET', 'HEAD', 'OPTIONS']);
/** How much of a refused body is read and dropped before the connection is cut. */
const DRAIN_BYTES = 64 * 1024 * 1024;

export function isLoopback(host: string): boolean {
  const h = host.replace(/^\[|\]$/g, '').toLowerCase();
  if (h === 'localhost' || h.endsWith('.localhost')) return true;
  if (isIP(h) === 4) return h.startsWith('127.');
  return h === '::1' || h === '0:0:0:0:0:0:0:1' || h.startsWith('::ffff:127.');
}

/** The host name of a Host header, without its port (`[::1]:3000` → `::1`). */
export function hostName(header: string): string {
  const h = header.trim().toLowerCase();
  if (h.startsWith('[')) return h.slice(1, h.indexOf(']'));
  const colon = h.lastIndexOf(':');
  return colon > 0 && h.indexOf(':') === colon ? h.slice(0, colon) : h;
}

/**
 * What a REST path needs: `public`, a role, or `procedure` (tRPC and /api/v1: the procedure
 * decides). STAC search is a read even as POST.
 */
export function routeRole(
  method: string,
  path: string,
  publicRead: boolean,
  publicMetrics = false,
): Role | 'public' | 'procedure' {
  if (path === '/health' || path === '/healthz' || path === '/readyz') return 'public';
  if (path === '/metrics') return publicMetrics ? 'public' : 'read';
  if (path.startsWith('/trpc/')) return 'procedure';
  if (path === '/api/v1/openapi.json' || path === '/api/v1/docs' || path === '/api/v1') return 'public';
  if (path.startsWith('/api/v1/')) return 'procedure';
  const catalogue =
    path === '/stac' || path.startsWith('/stac/') || path === '/features' || path.startsWith('/features/');
  if (catalogue) {
    const read = SAFE.has(method) || (method === 'POST' && path.replace(/\/+$/, '') === '/stac/search');
    return read ? (publicRead ? 'public' : 'read') : 'admin';
  }
  return 'public'; // the dashboard's files (it signs in with a token for the API)
}

export interface Edge {
  /** Answers refused requests itself (returns false); otherwise records the principal (true). */
  handle(req: IncomingMessage, res: ServerResponse, url: URL): Promise<boolean>;
  /** Whether any token is configured now (CM_API_TOKEN or an active token in the database). */
  tokensConfigured(): Promise<boolean>;
}

export function createEdge(options: {
  env: Env;
  tokens: TokenStore;
  /** The role a tRPC procedure needs (its meta): checked here too, so subscriptions answer 401/403. */
  procedureRole?: (name: string) => Role | 'public' | undefined;
}): Edge {
  const { env, tokens } = options;
  const loopbackBind = isLoopback(env.CM_API_HOST);
  const anonymousAllowed = loopbackBind || env.CM_ALLOW_ANONYMOUS_NON_LOOPBACK;
  const hosts = new Set(
    ['localhost', '127.0.0.1', '::1', ...env.CM_ALLOWED_HOSTS, env.CM_API_HOST].map((h) => hostName(h)),
  );
  const origins = new Set(env.CM_CORS_ORIGINS);
  // Whether tokens exist is asked at most once a second (a token created with `cm token create`
  // turns anonymous access off within a second, without a restart).
  let cached: { at: number; value: boolean } | null = null;
  const tokensConfigured = async (): Promise<boolean> => {
    if (env.CM_API_TOKEN) return true;
    if (cached && Date.now() - cached.at < 1000) return cached.value;
    try {
      const value = (await tokens.activeCount()) > 0;
      cached = { at: Date.now(), value };
      return value;
    } catch {
      // PostgreSQL unreachable: the last answer, or secured (health and readiness stay public,
      // so /readyz still says 503 rather than failing here).
      return cached?.value ?? true;
    }
  };

  const refuse = (res: ServerResponse, status: number, code: string, description: string, extra = {}) => {
    res.setHeader('cache-control', 'no-store');
    for (const [k, v] of Object.entries(extra)) res.setHeader(k, v as string);
    sendJson(res, status, { code, description });
    return false;
  };

  async function authenticate(req: IncomingMessage, url: URL): Promise<Principal | null | 'invalid'> {
    const header = req.headers.authorization;
    let token: string | undefined;
    if (header) {
      const m = /^Bearer\s+(\S+)\s*$/i.exec(header);
      if (!m) return 'invalid';
      token = m[1];
    } else if (req.method === 'GET' && url.searchParams.has('access_token')) {
      // EventSource (server-sent events) cannot send headers: RFC 6750's query parameter.
      token = url.searchParams.get('access_token') ?? undefined;
    }
    if (!token) return null;
    if (env.CM_API_TOKEN && sameToken(token, env.CM_API_TOKEN))
      return { name: CONFIG_TOKEN_NAME, role: 'admin', source: 'config' };
    return (await tokens.verify(token)) ?? 'invalid';
  }

  return {
    tokensConfigured,
    async handle(req, res, url) {
      const method = req.method ?? 'GET';
      requestBodyLimit.set(req, env.CM_MAX_BODY_BYTES);
      const length = Number(req.headers['content-length'] ?? 0);
      if (length > env.CM_MAX_BODY_BYTES) {
        // Answered before reading; the body is then read and dropped (never held), so the
        // client reads the 413 rather than a reset connection, up to 64 MiB, then cut off.
        let dropped = 0;
        req.on('data', (chunk: Buffer) => {
          dropped += chunk.length;
          if (dropped > DRAIN_BYTES) req.socket.destroy();
        });
        return refuse(
          res,
          413,
          'PayloadTooLarge',
          `request body of ${length} bytes is larger than the limit of ${env.CM_MAX_BODY_BYTES} bytes (CM_MAX_BODY_BYTES)`,
        );
      }

      const secured = await tokensConfigured();
      // DNS rebinding: a page on evil.example resolving to 127.0.0.1 sends Host: evil.example.
      if (!secured || env.CM_ALLOWED_HOSTS.length) {
        const host = req.headers.host;
        if (!host || !hosts.has(hostName(host)))
          return refuse(
            res,
            421,
            'HostNotAllowed',
            `this server does not answer to the host ${JSON.stringify(host ?? '')} (CM_ALLOWED_HOSTS lists the names)`,
          );
      }

      // CORS: same origin, or an origin of the allow-list (`*` there allows reads only).
      const origin = req.headers.origin;
      let allowOrigin: string | null = null;
      if (origin) {
        const same = origin === baseUrl(req, '');
        const wanted = method === 'OPTIONS' ? String(req.headers['access-control-request-method'] ?? 'GET') : method;
        const listed = origins.has(origin) || (origins.has('*') && SAFE.has(wanted.toUpperCase()));
        if (same || listed) allowOrigin = origin;
        else if (!SAFE.has(wanted.toUpperCase()))
          return refuse(res, 403, 'CrossOriginRefused', `requests from ${origin} are not allowed (CM_CORS_ORIGINS)`);
      }
      if (method === 'OPTIONS' && req.headers['access-control-request-method']) {
        if (!allowOrigin) return refuse(res, 403, 'CrossOriginRefused', `requests from ${origin} are not allowed`);
        res
          .writeHead(204, {
            'access-control-allow-origin': allowOrigin,
            'access-control-allow-methods': 'GET, HEAD, POST, PUT, DELETE, OPTIONS',
            'access-control-allow-headers': 'authorization, content-type, last-event-id',
            'access-control-max-age': '600',
            vary: 'Origin',
          })
          .end();
        return false;
      }
      // Routes may have set `*` themselves: the decision made here replaces it.
      const writeHead = res.writeHead.bind(res) as (...args: unknown[]) => ServerResponse;
      res.writeHead = ((...args: unknown[]) => {
        for (const a of args)
          if (a && typeof a === 'object' && !Array.isArray(a))
            for (const k of Object.keys(a))
              if (k.toLowerCase() === 'access-control-allow-origin') delete (a as never)[k];
        res.removeHeader('access-control-allow-origin');
        if (allowOrigin) {
          res.setHeader('access-control-allow-origin', allowOrigin);
          res.setHeader('vary', 'Origin');
        }
        return writeHead(...args);
      }) as typeof res.writeHead;

      const found = await authenticate(req, url);
      if (found === 'invalid')
        return refuse(res, 401, 'Unauthorized', 'the API token is not valid (unknown or revoked)', {
          'www-authenticate': 'Bearer error="invalid_token"',
        });
      let principal: Principal | null = found;
      if (!principal && !secured) {
        if (!anonymousAllowed)
          return refuse(
            res,
            401,
            'Unauthorized',
            'no API token is configured and this server is not on a loopback address: create one with `cm token create`',
          );
        principal = ANONYMOUS;
      }
      principals.set(req, principal);

      let need = routeRole(method, url.pathname, env.CM_PUBLIC_READ, env.CM_METRICS_PUBLIC);
      if (need === 'procedure' && url.pathname.startsWith('/trpc/') && options.procedureRole) {
        // `/trpc/a,b?batch=1`: the largest role of the batch; an unknown name is tRPC's 404.
        const roles = decodeURIComponent(url.pathname.slice('/trpc/'.length))
          .split(',')
          .map((name) => options.procedureRole!(name) ?? 'public');
        need = roles.reduce<Role | 'public'>(
          (a, b) => (b === 'public' ? a : a === 'public' || !roleAllows(a, b) ? b : a),
          'public',
        );
      }
      if (need === 'public' || need === 'procedure') return true;
      if (!principal)
        return refuse(res, 401, 'Unauthorized', 'an API token is required (Authorization: Bearer <token>)', {
          'www-authenticate': 'Bearer',
        });
      if (!roleAllows(principal.role, need))
        return refuse(
          res,
          403,
          'Forbidden',
          `the token "${principal.name}" has role ${principal.role}; ${method} ${url.pathname} needs ${need}`,
        );
      return true;
    },
  };
}
