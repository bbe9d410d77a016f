import type { Services } from '@coremachine/core-machine';
import { createStorage, ensureAzurite, ensureContainers, storageConfigFromEnv } from '@coremachine/storage';
import type { Env } from './env.ts';

type Probe = () => Promise<{ ok: boolean; [k: string]: unknown }>;

/**
 * Builds the services handed to plans and handlers. With the embedded default (no storage
 * configured), Azurite is started if nothing answers on its port, and the configured
 * containers are created.
 */
export async function createServices(
  env: Env,
  overrides: Partial<Services> = {},
): Promise<{ services: Services; probes: Record<string, Probe>; close(): Promise<void> }> {
  const storageConfig = storageConfigFromEnv();
  const azurite = storageConfig.kind === 'azurite' && env.CM_EMBEDDED_AZURITE ? await ensureAzurite() : null;
  const storage = createStorage(storageConfig);
  if (storageConfig.kind === 'azurite') await ensureContainers(storage, env.CM_CONTAINERS);
  const publicContainers = env.CM_PUBLIC_CONTAINERS ?? (storageConfig.kind === 'azurite' ? ['silver'] : []);
  for (const container of publicContainers) await storage.setPublicRead(container, true);
  const services = {
    storage,
    stac: { schema: env.CM_STAC_SCHEMA, featuresSchema: env.CM_GEO_SCHEMAS[0] },
    vector: { schemas: env.CM_GEO_SCHEMAS, localCopyMaxBytes: env.CM_INGEST_LOCAL_COPY_MB * 1024 * 1024 },
    ...overrides,
  } as Services;
  const probes: Record<string, Probe> = {
    storage: async () => {
      const t0 = performance.now();
      const container = env.CM_CONTAINERS[0] ?? 'bronze';
      // The storage the handlers use (an override included), so an outage of it is what readiness sees.
      const exists = await services.storage.containerExists(container);
      return {
        ok: true,
        kind: storageConfig.kind,
        container,
        containerExists: exists,
        latencyMs: Math.round(performance.now() - t0),
      };
    },
  };
  return {
    services,
    probes,
    close: async () => {
      await azurite?.stop();
    },
  };
}
