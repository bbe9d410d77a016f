/**
 * Assembles one CoreMachine process: plugins (discovered and checked), the engine, the HTTP
 * server (tRPC under /trpc, REST under /api/v1, /health, /features, /stac, dashboard at /,
 * behind the edge checks of auth/edge.ts) and, by role, the worker. Used by main.ts and by the end-to-end tests.
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
import type { Context, Meta } from './trpc.ts';
import type { Env } from './env.ts';
import { restRoutes, type RestRoute } from './rest/index.ts';
import { createServices } from './services.ts';
import { ensureStacStore } from '@coremachine/geo/stac';
import { createEdge, isLoopback, principalOf } from './auth/edge.ts';
import { TokenStore } from './auth/tokens.ts';
import { apiV1Routes } from './rest/api-v1.ts';
import { startMetricsServer, timeRequest } from './rest/metrics.ts';
import { startRetention } from './retention.ts';

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

const procedureMeta = appRouter._def.procedures as unknown as Record<string, { _def: { meta?: Meta } } | undefined>;
/** The role a procedure needs (meta.role; `admin` without one), undefined for an unknown name. */
function procedureRole(name: string): Meta['role'] | undefined {
  const p = Object.hasOwn(procedureMeta, name) ? procedureMeta[name] : undefined;
  return p ? (p._def.meta?.role ?? 'admin') : undefined;
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

  // API tokens live beside the ledger. Without any, the API is anonymous: loopback only unless
  // explicitly allowed (checked before a worker starts, so a refused start leaves nothing running).
  const tokens = new TokenStore(machine.pool, env.CM_SCHEMA);
  const edge = createEdge({ env, tokens, procedureRole });
  if (env.CM_ROLE !== 'worker') {
    await tokens.ensure();
    if (!(await edge.tokensConfigured())) {
      if (!isLoopback(env.CM_API_HOST) && !env.CM_ALLOW_ANONYMOUS_NON_LOOPBACK) {
        await machine.close();
        await closeServices();
        throw Object.assign(
          new Error(
            `no API token is configured, so the API serves anonymously and only on a loopback address, not ${env.CM_API_HOST}: ` +
              'set CM_API_TOKEN or create one with `cm token create --role admin --name <name>`, ' +
              'or set CM_ALLOW_ANONYMOUS_NON_LOOPBACK=true to let anyone on the network act as admin',
          ),
          { code: 'CM_ERR_ANONYMOUS_NON_LOOPBACK' },
        );
      }
      log.warn(
        `no API token configured: serving anonymously (everyone is admin)${isLoopback(env.CM_API_HOST) ? ' on loopback only' : ` on ${env.CM_API_HOST} (CM_ALLOW_ANONYMOUS_NON_LOOPBACK)`}; ` +
          'create a token with `cm token create` to require one',
      );
    }
  }

  const worker =
    env.CM_ROLE === 'api'
      ? null
      : await machine.startWorker(env.CM_WORKER_JOB_TYPES ? { jobTypes: env.CM_WORKER_JOB_TYPES } : {});
  let server: Server | null = null;
  let url: string | null = null;
  if (env.CM_ROLE !== 'worker') {
    const ctx: Context = { machine, reports, version: VERSION, probes, tokens };
    const trpc = createHTTPHandler({
      router: appRouter,
      createContext: ({ req }) => ({ ...ctx, principal: principalOf(req) }),
      basePath: '/trpc/',
      maxBodySize: env.CM_MAX_BODY_BYTES,
    });
    const routes: RestRoute[] = [
      apiV1Routes({ ctx, machine, version: VERSION }),
      ...restRoutes({
        machine,
        ctx,
        stacSchema: services.stac.schema,
        featuresSchema: services.vector?.schemas[0] ?? 'geo',
      }),
    ];
    const isProcedure = (name: string) => procedureRole(name) !== undefined;
    server = createServer((req: IncomingMessage, res: ServerResponse) => {
      const u = new URL(req.url ?? '/', 'http://localhost');
      timeRequest(req, res, u, isProcedure);
      void (async () => {
        if (!(await edge.handle(req, res, u))) return;
        if (u.pathname.startsWith('/trpc/')) return trpc(req, res);
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
  // Workers purge settled jobs past CM_RETENTION_DAYS (one process at a time, under a lock).
  const retention = env.CM_ROLE !== 'api' ? startRetention(machine, env) : null;
  // A worker-only process has no API: it can still be scraped, on a port of its own.
  const metricsServer =
    env.CM_ROLE === 'worker' && env.CM_METRICS_PORT !== undefined
      ? await startMetricsServer(machine, env.CM_METRICS_HOST, env.CM_METRICS_PORT)
      : null;

  return {
    machine,
    server,
    worker,
    url,
    reports,
    close: async () => {
      await retention?.stop();
      for (const s of [server, metricsServer]) {
        if (!s) continue;
        s.closeAllConnections();
        await new Promise<void>((r) => s.close(() => r()));
      }
      await machine.close();
      await closeServices();
    },
  };
}
