/**
 * Assembles one CoreMachine process: plugins (discovered and checked), the engine, the HTTP
 * server (tRPC under /trpc, REST under /health, /features, /stac, dashboard at /) and, by
 * role, the worker. Used by main.ts and by the end-to-end tests.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { fileURLToPath } from 'node:url';
import {
  CoreMachine,
  createLogger,
  discoverPlugins,
  checkManifests,
  assertCompliant,
  type AnyJobDefinition,
  type ComplianceReport,
  type MachineConfig,
  type Services,
  type Worker,
} from '@coremachine/core-machine';
import { createHTTPHandler } from '@trpc/server/adapters/standalone';
import { appRouter } from './router.ts';
import type { Context } from './trpc.ts';
import type { Env } from './env.ts';
import { restRoutes, type RestRoute } from './rest/index.ts';
import { createServices } from './services.ts';
import { ensureStacStore } from '@coremachine/geo/stac';

export const APP_PACKAGE_JSON = fileURLToPath(new URL('../package.json', import.meta.url));
export const VERSION = '0.1.0';

export interface App {
  machine: CoreMachine;
  server: Server | null;
  worker: Worker | null;
  url: string | null;
  reports: ComplianceReport[];
  close(): Promise<void>;
}

export interface CreateAppOptions {
  env: Env;
  /** Where plugins are discovered (dependencies of this package.json). Default: apps/server. */
  pluginsFrom?: string;
  /** Explicit plugin list instead of discovery (tests). */
  plugins?: AnyJobDefinition[];
  config?: Partial<MachineConfig>;
  services?: Partial<Services>;
}

export async function loadCompliantPlugins(
  pluginsFrom = APP_PACKAGE_JSON,
): Promise<{ plugins: AnyJobDefinition[]; reports: ComplianceReport[] }> {
  const { plugins, reports } = await discoverPlugins(pluginsFrom);
  assertCompliant(reports); // stops the process: names package and missing element
  return { plugins: plugins.map((p) => p.manifest), reports };
}

/** An explicit plugin list, checked exactly as discovered plugins are (throws when one fails). */
function checkedManifests(manifests: AnyJobDefinition[]): { plugins: AnyJobDefinition[]; reports: ComplianceReport[] } {
  const { plugins, reports } = checkManifests(manifests);
  assertCompliant(reports);
  return { plugins: plugins.map((p) => p.manifest), reports };
}

export async function createApp(options: CreateAppOptions): Promise<App> {
  const { env } = options;
  const log = createLogger(env.CM_LOG_LEVEL);
  const { plugins, reports } = options.plugins
    ? checkedManifests(options.plugins)
    : await loadCompliantPlugins(options.pluginsFrom);
  const { services, probes, close: closeServices } = await createServices(env, options.services);
  const machine = await CoreMachine.start({
    connectionString: env.DATABASE_URL,
    plugins,
    services,
    log,
    config: {
      schema: env.CM_SCHEMA,
      ...(env.CM_MAX_ATTEMPTS ? { maxAttempts: env.CM_MAX_ATTEMPTS } : {}),
      ...(env.CM_RETRY_BASE_DELAY_MS !== undefined ? { retryBaseDelayMs: env.CM_RETRY_BASE_DELAY_MS } : {}),
      ...(env.CM_RETRY_MAX_DELAY_MS !== undefined ? { retryMaxDelayMs: env.CM_RETRY_MAX_DELAY_MS } : {}),
      ...(env.CM_LEASE_SECONDS ? { leaseSeconds: env.CM_LEASE_SECONDS } : {}),
      ...options.config,
    },
  });

  // The STAC store and the vector schemas live beside the ledger; both are created idempotently.
  await ensureStacStore(machine.pool, services.stac.schema);
  for (const schema of services.vector?.schemas ?? [])
    await machine.pool.query(`CREATE SCHEMA IF NOT EXISTS "${schema}"`);

  const worker =
    env.CM_ROLE === 'api'
      ? null
      : await machine.startWorker(env.CM_WORKER_JOB_TYPES ? { jobTypes: env.CM_WORKER_JOB_TYPES } : {});
  let server: Server | null = null;
  let url: string | null = null;
  if (env.CM_ROLE !== 'worker') {
    const ctx: Context = { machine, reports, version: VERSION, probes };
    const trpc = createHTTPHandler({ router: appRouter, createContext: () => ctx, basePath: '/trpc/' });
    const routes: RestRoute[] = restRoutes({
      machine,
      ctx,
      stacSchema: services.stac.schema,
      featuresSchema: services.vector?.schemas[0] ?? 'geo',
    });
    server = createServer((req: IncomingMessage, res: ServerResponse) => {
      const u = new URL(req.url ?? '/', `http://${req.headers.host ?? 'localhost'}`);
      if (u.pathname.startsWith('/trpc/')) return trpc(req, res);
      void (async () => {
        for (const route of routes) if (await route(req, res, u)) return;
        res
          .writeHead(404, { 'content-type': 'application/json' })
          .end(JSON.stringify({ code: 'NotFound', description: `No route for ${req.method} ${u.pathname}` }));
      })().catch((err) => {
        log.error('request failed', { path: u.pathname, error: (err as Error).message });
        if (!res.headersSent) res.writeHead(500, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ code: 'InternalError', description: (err as Error).message }));
      });
    });
    await new Promise<void>((resolve, reject) => {
      server!.once('error', reject);
      server!.listen(env.CM_API_PORT, env.CM_API_HOST, () => resolve());
    });
    const addr = server.address() as AddressInfo;
    url = `http://${env.CM_API_HOST}:${addr.port}`;
  }

  return {
    machine,
    server,
    worker,
    url,
    reports,
    close: async () => {
      if (server) {
        server.closeAllConnections();
        await new Promise<void>((r) => server!.close(() => r()));
      }
      await machine.close();
      await closeServices();
    },
  };
}
