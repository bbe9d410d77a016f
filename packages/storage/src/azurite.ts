import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, existsSync, mkdirSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { createRequire } from 'node:module';
import { connect } from 'node:net';
import { dirname, join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { AZURITE_ACCOUNT } from './config.ts';
import { StorageError } from './errors.ts';
import type { BlobStorage } from './blob-storage.ts';

export interface EnsureAzuriteOptions {
  /** Data folder. Default `<repo>/.data/azurite`. */
  location?: string;
  port?: number;
  host?: string;
  /** How long to wait for the port to answer after spawning. */
  timeoutMs?: number;
  /**
   * Start Azurite in its own process group and let it outlive this process (used by the shared
   * test setup, where the last test run out stops it). Default false: it dies with us.
   */
  detached?: boolean;
}

export interface AzuriteHandle {
  /** Blob endpoint including the account, e.g. http://127.0.0.1:10000/devstoreaccount1. */
  endpoint: string;
  /** True when this call spawned Azurite; false when something already answered on the port. */
  started: boolean;
  pid: number | null;
  /** Stops Azurite if this call started it; a no-op otherwise. */
  stop(): Promise<void>;
}

/** The workspace root (the folder holding pnpm-workspace.yaml), found from this file upwards. */
export function repoRoot(from: string = import.meta.dirname): string {
  let dir = from;
  while (!existsSync(join(dir, 'pnpm-workspace.yaml'))) {
    const up = dirname(dir);
    if (up === dir) return process.cwd();
    dir = up;
  }
  return dir;
}

/** Resolves to true when something accepts TCP connections on host:port. */
export function probePort(port: number, host = '127.0.0.1', timeoutMs = 500): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ port, host });
    const done = (ok: boolean) => { socket.destroy(); resolve(ok); };
    socket.setTimeout(timeoutMs, () => done(false));
    socket.once('connect', () => done(true));
    socket.once('error', () => done(false));
  });
}

function azuriteBlobEntry(): string {
  const require = createRequire(import.meta.url);
  const pkgJson = require.resolve('azurite/package.json');
  const bin = (require(pkgJson) as { bin: Record<string, string> }).bin['azurite-blob'] ?? './dist/src/blob/main.js';
  return join(dirname(pkgJson), bin);
}

/**
 * Makes sure an Azurite blob service answers on `host:port`, spawning the `azurite-blob` of
 * this workspace only when nothing does. Two callers racing is fine: the loser's Azurite exits
 * with EADDRINUSE, and the loser then finds the winner's instance answering.
 *
 * @example
 *   const azurite = await ensureAzurite();
 *   try { ... } finally { await azurite.stop(); }
 */
export async function ensureAzurite(options: EnsureAzuriteOptions = {}): Promise<AzuriteHandle> {
  const host = options.host ?? '127.0.0.1';
  const port = options.port ?? 10000;
  const location = options.location ?? join(repoRoot(), '.data', 'azurite');
  const endpoint = `http://${host}:${port}/${AZURITE_ACCOUNT}`;
  const notOurs: AzuriteHandle = { endpoint, started: false, pid: null, stop: async () => {} };
  if (await probePort(port, host)) return notOurs;
  // One starter per port at a time (across processes): the others wait, then find it answering.
  const release = await lockPort(port, options.timeoutMs ?? 30_000);
  try {
    if (await probePort(port, host)) return notOurs;
    return await spawnAzurite(options, { host, port, location, endpoint, notOurs });
  } finally {
    release();
  }
}

async function lockPort(port: number, timeoutMs: number): Promise<() => void> {
  const dir = join(tmpdir(), `coremachine-azurite-${port}.lock`);
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      mkdirSync(dir);
      writeFileSync(join(dir, 'pid'), String(process.pid));
      return () => rmSync(dir, { recursive: true, force: true });
    } catch {
      // A lock left by a process that died holding it is stale.
      let holder = 0;
      try { holder = Number(readFileSync(join(dir, 'pid'), 'utf8')); } catch { /* being written or removed */ }
      if (holder && holder !== process.pid && !pidAlive(holder)) rmSync(dir, { recursive: true, force: true });
      if (Date.now() > deadline) throw new StorageError('AZURITE_START_FAILED', `Timed out waiting for the Azurite start lock ${dir}`);
      await sleep(50);
    }
  }
}

function pidAlive(pid: number): boolean {
  try { process.kill(pid, 0); return true; } catch { return false; }
}

async function spawnAzurite(
  options: EnsureAzuriteOptions,
  { host, port, location, endpoint, notOurs }: { host: string; port: number; location: string; endpoint: string; notOurs: AzuriteHandle },
): Promise<AzuriteHandle> {

  mkdirSync(location, { recursive: true });
  const logFd = openSync(join(location, 'azurite-stderr.log'), 'a');
  const args = [azuriteBlobEntry(), '--silent', '--skipApiVersionCheck', '--location', location, '--blobHost', host, '--blobPort', String(port)];
  let child: ChildProcess;
  try {
    child = spawn(process.execPath, args, { stdio: ['ignore', 'ignore', logFd], detached: options.detached ?? false });
  } finally {
    closeSync(logFd);
  }
  let exited = false;
  child.once('exit', () => { exited = true; });
  if (options.detached) child.unref();

  const deadline = Date.now() + (options.timeoutMs ?? 30_000);
  while (Date.now() < deadline) {
    if (await probePort(port, host)) {
      // Ours, unless it died (EADDRINUSE) and someone else's instance answers.
      if (exited) return notOurs;
      return { endpoint, started: true, pid: child.pid ?? null, stop: () => stopProcess(child) };
    }
    if (exited) {
      // Lost a race with another starter, which may not be listening yet: keep probing briefly.
      for (let i = 0; i < 40 && Date.now() < deadline; i++) {
        if (await probePort(port, host)) return notOurs;
        await sleep(100);
      }
      throw new StorageError('AZURITE_START_FAILED', `Azurite exited before listening on ${host}:${port}; see ${join(location, 'azurite-stderr.log')}`);
    }
    await sleep(100);
  }
  await stopProcess(child);
  throw new StorageError('AZURITE_START_FAILED', `Azurite did not listen on ${host}:${port} within ${options.timeoutMs ?? 30_000} ms; see ${join(location, 'azurite-stderr.log')}`);
}

async function stopProcess(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), 5_000);
  await exited;
  clearTimeout(timer);
}

/** Stops a process by pid (SIGTERM, then SIGKILL after 5 s); for detached instances. */
export async function stopPid(pid: number): Promise<void> {
  const alive = () => pidAlive(pid);
  if (!alive()) return;
  process.kill(pid, 'SIGTERM');
  for (let i = 0; i < 50 && alive(); i++) await sleep(100);
  if (alive()) process.kill(pid, 'SIGKILL');
}

/** Creates each container that does not exist yet; returns the ones it created. */
export async function ensureContainers(storage: BlobStorage, containers: readonly string[]): Promise<string[]> {
  const created: string[] = [];
  for (const c of containers) if (await storage.ensureContainer(c)) created.push(c);
  return created;
}
