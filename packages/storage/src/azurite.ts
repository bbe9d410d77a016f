import { spawn } from 'node:child_process';
import { closeSync, existsSync, mkdirSync, openSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
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
}

export interface AzuriteHandle {
  /** Blob endpoint including the account, e.g. http://127.0.0.1:10000/devstoreaccount1. */
  endpoint: string;
  /** True when this call spawned Azurite; false when something already answered on the port. */
  started: boolean;
  /** Pid of the Azurite this call or an earlier ensureAzurite spawned, if any. */
  pid: number | null;
  /**
   * Releases this handle. Azurite stops when the last live handle (in any process) is released
   * and it was spawned by an ensureAzurite; an instance started by hand is never stopped.
   */
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
    const done = (ok: boolean) => {
      socket.destroy();
      resolve(ok);
    };
    socket.setTimeout(timeoutMs, () => done(false));
    socket.once('connect', () => done(true));
    socket.once('error', () => done(false));
  });
}

function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

function azuriteBlobEntry(): string {
  const require = createRequire(import.meta.url);
  const pkgJson = require.resolve('azurite/package.json');
  const bin = (require(pkgJson) as { bin: Record<string, string> }).bin['azurite-blob'] ?? './dist/src/blob/main.js';
  return join(dirname(pkgJson), bin);
}

// Shared state per port, across processes: a lock directory, one file per live handle
// (`users/<pid>-<n>`) and the pid of the Azurite an ensureAzurite spawned (`owner`).
const runDir = (port: number) => join(tmpdir(), `coremachine-azurite-${port}`);
let handleCounter = 0;

async function withPortLock<T>(port: number, timeoutMs: number, fn: () => Promise<T>): Promise<T> {
  const lock = join(runDir(port), 'lock');
  mkdirSync(runDir(port), { recursive: true });
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      mkdirSync(lock);
      writeFileSync(join(lock, 'pid'), String(process.pid));
      break;
    } catch {
      // A lock whose holder died is stale; a lock without a pid file yet is being taken.
      let holder = 0;
      try {
        holder = Number(readFileSync(join(lock, 'pid'), 'utf8'));
      } catch {
        /* not written yet */
      }
      if (holder && !pidAlive(holder)) rmSync(lock, { recursive: true, force: true });
      if (Date.now() > deadline)
        throw new StorageError('AZURITE_START_FAILED', `Timed out waiting for the Azurite lock ${lock}`);
      await sleep(50);
    }
  }
  try {
    return await fn();
  } finally {
    rmSync(lock, { recursive: true, force: true });
  }
}

function liveUsers(port: number): string[] {
  const dir = join(runDir(port), 'users');
  mkdirSync(dir, { recursive: true });
  return readdirSync(dir).filter((f) => {
    const alive = pidAlive(Number(f.split('-')[0]));
    if (!alive) rmSync(join(dir, f), { force: true });
    return alive;
  });
}

function readOwner(port: number): number | null {
  try {
    const pid = Number(readFileSync(join(runDir(port), 'owner'), 'utf8'));
    return pid && pidAlive(pid) ? pid : null;
  } catch {
    return null;
  }
}

/**
 * Makes sure an Azurite blob service answers on `host:port`, spawning the `azurite-blob` of
 * this workspace (detached, so it can outlive this process) only when nothing does. Handles are
 * counted across processes: test runs of several packages, the server and benchmarks can share
 * one instance, and the last one to `stop()` shuts it down.
 *
 * @example
 *   const azurite = await ensureAzurite();
 *   try { ... } finally { await azurite.stop(); }
 */
export async function ensureAzurite(options: EnsureAzuriteOptions = {}): Promise<AzuriteHandle> {
  const host = options.host ?? '127.0.0.1';
  const port = options.port ?? 10000;
  const location = options.location ?? join(repoRoot(), '.data', 'azurite');
  const timeoutMs = options.timeoutMs ?? 30_000;
  const endpoint = `http://${host}:${port}/${AZURITE_ACCOUNT}`;
  const user = join(runDir(port), 'users', `${process.pid}-${++handleCounter}`);

  const { started, pid } = await withPortLock(port, timeoutMs, async () => {
    liveUsers(port);
    writeFileSync(user, '');
    if (await probePort(port, host)) return { started: false, pid: readOwner(port) };
    rmSync(join(runDir(port), 'owner'), { force: true });
    try {
      const spawned = await spawnAzurite(location, host, port, timeoutMs);
      writeFileSync(join(runDir(port), 'owner'), String(spawned));
      return { started: true, pid: spawned };
    } catch (err) {
      rmSync(user, { force: true });
      throw err;
    }
  });

  let stopped = false;
  return {
    endpoint,
    started,
    pid,
    stop: async () => {
      if (stopped) return;
      stopped = true;
      await withPortLock(port, timeoutMs, async () => {
        rmSync(user, { force: true });
        if (liveUsers(port).length > 0) return;
        const owner = readOwner(port);
        rmSync(join(runDir(port), 'owner'), { force: true });
        if (owner) await stopPid(owner);
      });
    },
  };
}

async function spawnAzurite(location: string, host: string, port: number, timeoutMs: number): Promise<number> {
  mkdirSync(location, { recursive: true });
  const log = join(location, 'azurite-stderr.log');
  const logFd = openSync(log, 'a');
  const args = [
    azuriteBlobEntry(),
    '--silent',
    '--skipApiVersionCheck',
    '--location',
    location,
    '--blobHost',
    host,
    '--blobPort',
    String(port),
  ];
  let child;
  try {
    child = spawn(process.execPath, args, { stdio: ['ignore', 'ignore', logFd], detached: true });
  } finally {
    closeSync(logFd);
  }
  let exited = false;
  child.once('exit', () => {
    exited = true;
  });
  child.unref();
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (exited)
      throw new StorageError(
        'AZURITE_START_FAILED',
        `Azurite exited before listening on ${host}:${port} (port taken by something else?); see ${log}`,
      );
    if (await probePort(port, host)) return child.pid!;
    await sleep(100);
  }
  if (child.pid) await stopPid(child.pid);
  throw new StorageError(
    'AZURITE_START_FAILED',
    `Azurite did not listen on ${host}:${port} within ${timeoutMs} ms; see ${log}`,
  );
}

/** Stops a process by pid (SIGTERM, then SIGKILL after 5 s). */
export async function stopPid(pid: number): Promise<void> {
  if (!pidAlive(pid)) return;
  process.kill(pid, 'SIGTERM');
  for (let i = 0; i < 50 && pidAlive(pid); i++) await sleep(100);
  if (pidAlive(pid)) process.kill(pid, 'SIGKILL');
  for (let i = 0; i < 20 && pidAlive(pid); i++) await sleep(50);
}

/** Creates each container that does not exist yet; returns the ones it created. */
export async function ensureContainers(storage: BlobStorage, containers: readonly string[]): Promise<string[]> {
  const created: string[] = [];
  for (const c of containers) if (await storage.ensureContainer(c)) created.push(c);
  return created;
}
