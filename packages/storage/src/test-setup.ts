/**
 * vitest globalSetup shared by every package that needs blob storage:
 *   export default defineConfig({ test: { globalSetup: ['@coremachine/storage/test-setup'] } })
 *
 * Several packages' test runs start at once under turbo and share one Azurite. Each run
 * registers itself in `<repo>/.data/azurite-run/users/<pid>` under a directory lock; the run
 * that finds nothing listening starts Azurite detached and records its pid as the owner; the
 * last run out stops it, but only if a test run started it (an Azurite started by `make start`
 * or by hand is left alone).
 */
import { mkdirSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { ensureAzurite, repoRoot, stopPid } from './azurite.ts';
import { storageConfigFromEnv } from './config.ts';

const RUN_DIR = join(repoRoot(), '.data', 'azurite-run');
const LOCK = join(RUN_DIR, 'lock');
const USERS = join(RUN_DIR, 'users');
const OWNER = join(RUN_DIR, 'owner.json');

function alive(pid: number): boolean {
  try { process.kill(pid, 0); return true; } catch { return false; }
}

async function withLock<T>(fn: () => Promise<T>): Promise<T> {
  mkdirSync(RUN_DIR, { recursive: true });
  for (let i = 0; ; i++) {
    try {
      mkdirSync(LOCK);
      break;
    } catch {
      // A lock older than a minute belongs to a run that was killed while holding it.
      try { if (Date.now() - statSync(LOCK).mtimeMs > 60_000) rmSync(LOCK, { recursive: true, force: true }); } catch { /* gone already */ }
      if (i > 1200) throw new Error(`Timed out waiting for the Azurite test lock ${LOCK}`);
      await sleep(50);
    }
  }
  try { return await fn(); } finally { rmSync(LOCK, { recursive: true, force: true }); }
}

function liveUsers(): number[] {
  mkdirSync(USERS, { recursive: true });
  const pids = readdirSync(USERS).map(Number).filter((p) => Number.isInteger(p));
  for (const p of pids) if (!alive(p)) rmSync(join(USERS, String(p)), { force: true });
  return pids.filter(alive);
}

export default async function setup(): Promise<() => Promise<void>> {
  const config = storageConfigFromEnv();
  if (config.kind !== 'azurite') return async () => {}; // real Azure: nothing to start
  const url = new URL(config.endpoint);
  const port = Number(url.port || 10000);
  await withLock(async () => {
    liveUsers();
    writeFileSync(join(USERS, String(process.pid)), '');
    const handle = await ensureAzurite({ port, host: url.hostname, detached: true });
    if (handle.started) writeFileSync(OWNER, JSON.stringify({ pid: handle.pid }));
  });
  return async () => {
    await withLock(async () => {
      rmSync(join(USERS, String(process.pid)), { force: true });
      if (liveUsers().length > 0) return;
      let owner: { pid?: number } = {};
      try { owner = JSON.parse(readFileSync(OWNER, 'utf8')) as { pid?: number }; } catch { return; }
      rmSync(OWNER, { force: true });
      if (owner.pid) await stopPid(owner.pid);
    });
  };
}
