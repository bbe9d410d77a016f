/**
 * `node --import tsx src/main.ts`: starts CoreMachine in the role CM_ROLE (api, worker, all).
 * Exits non-zero, naming the package and the missing element, when a plugin is not compliant.
 */
import { createApp } from './app.ts';
import { parseEnv } from './env.ts';

async function main(): Promise<void> {
  const env = parseEnv();
  const app = await createApp({ env, ...(env.CM_PLUGINS_FROM ? { pluginsFrom: env.CM_PLUGINS_FROM } : {}) });
  const types = app.reports
    .filter((r) => r.compliant)
    .map((r) => r.type)
    .join(', ');
  process.stdout.write(`CoreMachine ${env.CM_ROLE} ready${app.url ? ` at ${app.url}` : ''} (job types: ${types})\n`);
  if (app.url) process.stdout.write(`  dashboard ${app.url}/   API ${app.url}/trpc   health ${app.url}/health\n`);
  let stopping = false;
  const stop = async (signal: string) => {
    if (stopping) return;
    stopping = true;
    process.stdout.write(`${signal}: stopping\n`);
    await app.close();
    process.exit(0);
  };
  process.on('SIGINT', () => void stop('SIGINT'));
  process.on('SIGTERM', () => void stop('SIGTERM'));
}

main().catch((err: Error & { code?: string }) => {
  process.stderr.write(`CoreMachine failed to start${err.code ? ` [${err.code}]` : ''}: ${err.message}\n`);
  process.exit(1);
});
