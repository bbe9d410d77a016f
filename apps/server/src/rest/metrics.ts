/**
 * GET /metrics (Prometheus text format): the engine's counters and histograms of this process,
 * the ledger gauges (whole cluster) read at scrape time, HTTP request durations by route and the
 * process's default metrics. Readable with a `read` token, or by anyone with CM_METRICS_PUBLIC.
 * A worker-only process (no API) can serve the same on CM_METRICS_PORT.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { metrics, type CoreMachine } from '@coremachine/core-machine';
import type { RestRoute } from './http.ts';

const HEX_ID = /^[0-9a-f]{64}$/;
/** Second path segments of the catalogues kept as they are (anything else is an id). */
const CATALOGUE_WORDS = new Set(['collections', 'search', 'conformance', 'queryables', 'api', 'tiles']);

/**
 * The route label of a request path: ids and user-chosen names replaced by placeholders, so the
 * number of label values stays bounded whatever clients send.
 */
export function routeLabel(path: string, status: number, isProcedure: (name: string) => boolean): string {
  const parts = path.split('/').filter(Boolean);
  const [first, second] = parts;
  if (!first) return '/';
  if (first === 'trpc') {
    const names = decodeURIComponent(second ?? '').split(',');
    return names.every((n) => isProcedure(n)) ? `/trpc/${names.join(',')}` : '/trpc/{unknown}';
  }
  if (first === 'api' && second === 'v1') {
    if (status === 404 && parts.length > 3) return '/api/v1/{unmatched}';
    return '/' + parts.map((p) => (HEX_ID.test(p) ? '{jobId}' : p)).join('/');
  }
  if (first === 'stac' || first === 'features') {
    if (!second) return `/${first}`;
    return CATALOGUE_WORDS.has(second) ? `/${first}/${second}${parts.length > 2 ? '/…' : ''}` : `/${first}/…`;
  }
  if (['health', 'healthz', 'readyz', 'metrics'].includes(first) && parts.length === 1) return `/${first}`;
  if (first === 'assets' || first === 'blobs') return `/${first}/…`;
  return '/{static}';
}

/** Times every request of `server` into cm_http_request_duration_seconds. */
export function timeRequest(
  req: IncomingMessage,
  res: ServerResponse,
  url: URL,
  isProcedure: (name: string) => boolean,
): void {
  const t0 = performance.now();
  res.once('close', () => {
    metrics.httpDuration.observe(
      {
        method: req.method ?? 'GET',
        route: routeLabel(url.pathname, res.statusCode, isProcedure),
        status: String(res.statusCode),
      },
      (performance.now() - t0) / 1000,
    );
  });
}

/** The scrape: ledger gauges refreshed (within a budget; their last values when the database is down). */
export async function renderMetrics(machine: CoreMachine): Promise<{ contentType: string; body: string }> {
  let timer: NodeJS.Timeout | undefined;
  try {
    await Promise.race([
      metrics.refreshLedgerGauges(machine.pool, machine.t, machine.config.workerLivenessSeconds),
      new Promise((_, reject) => {
        timer = setTimeout(() => reject(new Error('ledger gauges did not answer within 2 s')), 2_000);
      }),
    ]);
  } catch {
    metrics.scrapeErrors.inc();
  } finally {
    clearTimeout(timer);
  }
  return { contentType: metrics.registry.contentType, body: await metrics.registry.metrics() };
}

export function metricsRoute(machine: CoreMachine): RestRoute {
  return async (req, res, url) => {
    if (url.pathname !== '/metrics' || (req.method !== 'GET' && req.method !== 'HEAD')) return false;
    const { contentType, body } = await renderMetrics(machine);
    res.writeHead(200, { 'content-type': contentType, 'cache-control': 'no-store' }).end(body);
    return true;
  };
}

/** A worker-only process's metrics endpoint: /metrics and /healthz, nothing else. */
export async function startMetricsServer(machine: CoreMachine, host: string, port: number): Promise<Server> {
  const route = metricsRoute(machine);
  const server = createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://localhost');
    void (async () => {
      if (url.pathname === '/healthz') return void res.writeHead(200, { 'content-type': 'text/plain' }).end('ok\n');
      if (!(await route(req, res, url))) res.writeHead(404, { 'content-type': 'text/plain' }).end('not found\n');
    })().catch(() => {
      if (!res.headersSent) res.writeHead(500);
      res.end();
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => resolve());
  });
  return server;
}
