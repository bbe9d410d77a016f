import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const REPO = fileURLToPath(new URL('../../', import.meta.url));
export const SERVER_DIR = join(REPO, 'apps/server');

export interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs a TypeScript entry point with tsx and collects its output. */
export function runTs(
  script: string,
  args: string[],
  options: { cwd?: string; env?: Record<string, string>; timeoutMs?: number } = {},
): Promise<Run> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', script, ...args], {
      cwd: options.cwd ?? SERVER_DIR,
      env: { ...process.env, ...options.env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '',
      stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`${script} timed out; stderr: ${stderr}`));
    }, options.timeoutMs ?? 60_000);
    child.on('exit', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

/** Starts a long-running TypeScript process and resolves once it prints `readyLine`. */
export function startTs(
  script: string,
  args: string[],
  readyLine: RegExp,
  options: { cwd?: string; env?: Record<string, string> } = {},
): Promise<{ child: ChildProcess; output: () => string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', script, ...args], {
      cwd: options.cwd ?? SERVER_DIR,
      env: { ...process.env, ...options.env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    const timer = setTimeout(() => reject(new Error(`${script} not ready: ${out}`)), 60_000);
    const onData = (d: Buffer) => {
      out += d;
      if (readyLine.test(out)) {
        clearTimeout(timer);
        resolve({ child, output: () => out });
      }
    };
    child.stdout!.on('data', onData);
    child.stderr!.on('data', (d: Buffer) => (out += d));
    child.on('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`${script} exited with ${code}: ${out}`));
    });
  });
}

/** A throwaway app folder whose package.json depends on the given fixture plugin folders. */
export function fixtureApp(plugins: Record<string, string>): string {
  const dir = mkdtempSync(join(tmpdir(), 'cm-app-'));
  writeFileSync(
    join(dir, 'package.json'),
    JSON.stringify({
      name: 'fixture-app',
      private: true,
      dependencies: Object.fromEntries(Object.keys(plugins).map((n) => [n, '*'])),
    }),
  );
  for (const [name, folder] of Object.entries(plugins)) {
    const link = join(dir, 'node_modules', name);
    mkdirSync(dirname(link), { recursive: true });
    symlinkSync(folder, link, 'dir');
  }
  return join(dir, 'package.json');
}

export const FIXTURE_PLUGINS = join(REPO, 'tests/fixtures/plugins');
