/**
 * vitest globalSetup shared by every package that needs blob storage:
 *   export default defineConfig({ test: { globalSetup: ['@coremachine/storage/test-setup'] } })
 *
 * Makes sure Azurite answers (Azure configured instead: nothing to do). Several packages' test
 * runs share one instance: `ensureAzurite` counts handles across processes, so Azurite stops
 * when the last run finishes, and only if one of them started it.
 */
import { ensureAzurite } from './azurite.ts';
import { storageConfigFromEnv } from './config.ts';

export default async function setup(): Promise<() => Promise<void>> {
  const config = storageConfigFromEnv();
  if (config.kind !== 'azurite') return async () => {};
  const url = new URL(config.endpoint);
  const handle = await ensureAzurite({ port: Number(url.port || 10000), host: url.hostname });
  return () => handle.stop();
}
