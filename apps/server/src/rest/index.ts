import type { CoreMachine } from '@coremachine/core-machine';
import { appRouter } from '../router.ts';
import type { Context } from '../trpc.ts';
import { assetRoutes, blobSigner } from './assets.ts';
import { dashboardRoute } from './dashboard.ts';
import { featuresRoutes } from './features.ts';
import { stacRoutes } from './stac.ts';
import { sendJson, type RestRoute } from './http.ts';

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
  // Readiness: 503 while PostgreSQL does not answer (an outage, a restart), within ~1 s.
  const readyz: RestRoute = async (req, res, url) => {
    if (url.pathname !== '/readyz' || req.method !== 'GET') return false;
    const r = await deps.machine.ready();
    return sendJson(res, r.ready ? 200 : 503, r);
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
    readyz,
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
