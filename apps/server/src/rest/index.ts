import type { CoreMachine } from '@coremachine/core-machine';
import { appRouter } from '../router.ts';
import type { Context } from '../trpc.ts';
import { assetRoutes, blobSigner } from './assets.ts';
import { dashboardRoute } from './dashboard.ts';
import { featuresRoutes } from './features.ts';
import { stacRoutes } from './stac.ts';
import { sendJson, type RestRoute } from './http.ts';
import { metricsRoute } from './metrics.ts';

export type { RestRoute } from './http.ts';

export function restRoutes(deps: {
  machine: CoreMachine;
  ctx: Context;
  stacSchema: string;
  featuresSchema: string;
}): RestRoute[] {
  const caller = appRouter.createCaller(deps.ctx);
  const health: RestRoute = async (req, res, url) => {
    if (url.pathname !== '/health' || req.method !== 'GET') return false;
    const h = await caller.health();
    return sendJson(res, h.status === 'healthy' ? 200 : 503, h);
  };
  // Liveness: the process answers (no dependency asked).
  const healthz: RestRoute = async (req, res, url) => {
    if (url.pathname !== '/healthz' || req.method !== 'GET') return false;
    return sendJson(res, 200, { status: 'ok' });
  };
  // Readiness: 503 while PostgreSQL or storage does not answer (an outage, a restart), within ~1 s.
  const readyz: RestRoute = async (req, res, url) => {
    if (url.pathname !== '/readyz' || req.method !== 'GET') return false;
    const [db, ...probes] = await Promise.all([
      deps.machine.ready(),
      ...Object.entries(deps.ctx.probes).map(([name, probe]) => readyProbe(name, probe)),
    ]);
    const ready = db.ready && probes.every((p) => p.ok);
    return sendJson(res, ready ? 200 : 503, {
      ready,
      database: db.ready ? { ok: true } : { ok: false, error: db.error },
      ...Object.fromEntries(probes.map((p) => [p.name, p.ok ? { ok: true } : { ok: false, error: p.error }])),
    });
  };
  const { pool } = deps.machine;
  const { storage } = deps.machine.services;
  const stac = stacRoutes({ pool, schema: deps.stacSchema, storage });
  const assets = storage ? assetRoutes({ storage, sign: blobSigner(storage.config, storage) }) : null;
  const features = featuresRoutes({
    pool,
    schema: deps.featuresSchema,
    schemas: deps.machine.services.vector?.schemas,
  });
  return [
    health,
    healthz,
    readyz,
    metricsRoute(deps.machine),
    ...(assets ? [assets] : []),
    (req, res, url) =>
      url.pathname === '/stac' || url.pathname.startsWith('/stac/') ? stac(req, res, url) : Promise.resolve(false),
    (req, res, url) =>
      url.pathname === '/features' || url.pathname.startsWith('/features/')
        ? features(req, res, url)
        : Promise.resolve(false),
    dashboardRoute(),
  ];
}

/** One readiness probe within a second: `{ ok }`, or why not (a timeout included). */
async function readyProbe(
  name: string,
  probe: () => Promise<{ ok: boolean }>,
): Promise<{ name: string; ok: boolean; error?: string }> {
  let timer: NodeJS.Timeout | undefined;
  try {
    const r = await Promise.race([
      probe(),
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`${name} did not answer within 1000 ms`)), 1_000);
      }),
    ]);
    return { name, ok: r.ok };
  } catch (err) {
    return { name, ok: false, error: (err as Error).message };
  } finally {
    clearTimeout(timer);
  }
}
