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
  // The same as a log line (JSON on stderr), for log stores that only see the log.
  app.machine.log.info('CoreMachine started', { role: env.CM_ROLE, url: app.url, job_types: types.split(', ') });
  // SIGTERM/SIGINT: the worker stops fetching and lets running tasks finish for up to
  // CM_SHUTDOWN_GRACE_SECONDS (heartbeating them), then releases the rest and the process exits.
  // A second signal exits at once.
  let signals = 0;
  const stop = async (signal: string) => {
    if (++signals > 1) {
      process.stdout.write(`${signal} again: exiting now\n`);
      process.exit(1);
    }
    const grace = app.worker ? app.machine.config.shutdownGraceSeconds : 0;
    process.stdout.write(`${signal}: stopping${grace ? ` (running tasks get up to ${grace} s)` : ''}\n`);
    app.machine.log.info('stopping', { signal, grace_seconds: grace });
    try {
      await app.worker?.shutdown();
      await app.close();
    } catch (err) {
      process.stderr.write(`shutdown failed: ${(err as Error).message}\n`);
      process.exit(1);
    }
    process.exit(0);
  };
  process.on('SIGINT', () => void stop('SIGINT'));
  process.on('SIGTERM', () => void stop('SIGTERM'));
}

main().catch((err: Error & { code?: string }) => {
  process.stderr.write(`CoreMachine failed to start${err.code ? ` [${err.code}]` : ''}: ${err.message}\n`);
  process.exit(1);
});
