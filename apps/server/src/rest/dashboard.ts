/**
 * The dashboard at `/`: the built web app of apps/dashboard (`vite build` → apps/dashboard/dist),
 * served as static files with an SPA fallback (every other GET for a page answers index.html,
 * so /jobs/<id> can be reloaded or shared). Hashed assets are cached for a year. When the
 * build is missing the page says how to make it.
 */
import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import { extname, join, normalize, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { RestRoute } from './http.ts';

export const DASHBOARD_DIST = fileURLToPath(new URL('../../../dashboard/dist/', import.meta.url));

const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.json': 'application/json',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.ico': 'image/x-icon',
  '.woff2': 'font/woff2',
  '.map': 'application/json',
};

/** Paths the API owns: never answered with the app. */
const API_PREFIXES = ['/trpc/', '/health', '/stac', '/features'];

const NOT_BUILT = /* html */ `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>CoreMachine</title>
<meta name="viewport" content="width=device-width, initial-scale=1"></head>
<body style="font:15px system-ui,sans-serif;margin:40px;max-width:640px">
<h1>The dashboard is not built</h1>
<p>The API is running; the web app has not been built yet. Build it from the repository root with</p>
<pre>pnpm --filter @coremachine/dashboard build</pre>
<p>(or <code>pnpm build</code>; <code>make start</code> builds it before it starts), then reload this page.</p>
</body></html>`;

async function fileAt(dist: string, pathname: string): Promise<string | null> {
  let rel: string;
  try {
    rel = decodeURIComponent(pathname);
  } catch {
    return null;
  }
  const full = normalize(join(dist, rel));
  if (!full.startsWith(dist.endsWith(sep) ? dist : dist + sep)) return null; // no way out of dist/
  try {
    return (await stat(full)).isFile() ? full : null;
  } catch {
    return null;
  }
}

export function dashboardRoute(dist = DASHBOARD_DIST): RestRoute {
  return async (req, res, url) => {
    if (req.method !== 'GET' && req.method !== 'HEAD') return false;
    const path = url.pathname;
    if (API_PREFIXES.some((p) => path === p.replace(/\/$/, '') || path.startsWith(p.endsWith('/') ? p : p + '/')))
      return false;
    const send = (file: string, cache: string) => {
      res.writeHead(200, {
        'content-type': TYPES[extname(file)] ?? 'application/octet-stream',
        'cache-control': cache,
      });
      if (req.method === 'HEAD') res.end();
      else createReadStream(file).pipe(res);
      return true;
    };
    const file = path === '/' ? null : await fileAt(dist, path);
    if (file) return send(file, path.startsWith('/assets/') ? 'public, max-age=31536000, immutable' : 'no-cache');
    // A missing asset is a 404, not the app: a stale page must not get HTML for its script.
    if (path.startsWith('/assets/') || (extname(path) && extname(path) !== '.html')) return false;
    const index = await fileAt(dist, '/index.html');
    if (index) return send(index, 'no-cache');
    res.writeHead(503, { 'content-type': 'text/html; charset=utf-8', 'cache-control': 'no-cache' }).end(NOT_BUILT);
    return true;
  };
}
