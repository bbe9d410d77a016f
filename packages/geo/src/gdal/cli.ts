import { spawn } from 'node:child_process';
import { gdalChildEnv } from './settings.ts';

export interface GdalCliOptions {
  /** Aborting kills the program (SIGKILL) and rejects with `signal.reason` once it has exited. */
  signal?: AbortSignal;
  /** Called with 0..1 as the program reports its progress (`0...10...20...`). */
  onProgress?: (fraction: number) => void;
}

/** A GDAL command-line program that failed: `message` is what it printed as `ERROR n: ...`. */
export class GdalCliError extends Error {
  readonly program: string;
  readonly exitCode: number | null;
  readonly exitSignal: NodeJS.Signals | null;
  constructor(program: string, message: string, exitCode: number | null, exitSignal: NodeJS.Signals | null) {
    super(message);
    this.name = 'GdalCliError';
    this.program = program;
    this.exitCode = exitCode;
    this.exitSignal = exitSignal;
  }
}

/** Bytes of a program's stderr kept for its error message. */
const STDERR_KEEP = 64 * 1024;

/**
 * GDAL's message from a program's stderr: its `ERROR n:` lines (continuation lines included),
 * else the last non-empty lines; `fallback` when it printed nothing.
 */
export function gdalCliMessage(stderr: string, fallback: string): string {
  const lines = stderr.split(/\r?\n/);
  const errors: string[] = [];
  let inError = false;
  for (const line of lines) {
    const m = /^ERROR \d+: (.*)$/.exec(line);
    if (m) {
      errors.push(m[1]!);
      inError = true;
    } else if (inError && line.trim() && !/^(Warning \d+:|Usage:)/.test(line)) {
      errors[errors.length - 1] += ` ${line.trim()}`;
    } else inError = false;
  }
  if (errors.length) return errors.join('; ');
  const tail = lines.filter((l) => l.trim()).slice(-3);
  return tail.length ? tail.join('; ') : fallback;
}

/**
 * Runs a GDAL command-line program (`gdalwarp`, `gdal_translate`, ...) of the GDAL this process
 * links, with this process's GDAL settings (block cache, /vsiaz/ credentials and timeouts) in
 * its environment, never on its command line. The work runs outside this process: its memory is
 * the program's own (returned to the system when it exits) and a cancel stops it at once.
 * Rejects with a {@link GdalCliError} (GDAL's message) when it fails; with `signal.reason` when
 * aborted (after the program has exited, so no file is written after the rejection).
 *
 * @example
 *   await runGdalCli('gdalwarp', ['-t_srs', 'EPSG:4326', src, dst], { signal: ctx.signal });
 */
export function runGdalCli(program: string, args: readonly string[], options: GdalCliOptions = {}): Promise<void> {
  const { signal, onProgress } = options;
  if (signal?.aborted) return Promise.reject(signal.reason as Error);
  return new Promise<void>((resolve, reject) => {
    const child = spawn(program, args, { env: gdalChildEnv(), stdio: ['ignore', 'pipe', 'pipe'] });
    let stderr = '';
    let progressText = '';
    let spawnError: Error | null = null;
    const onAbort = () => child.kill('SIGKILL');
    signal?.addEventListener('abort', onAbort, { once: true });
    child.stdout.setEncoding('utf8');
    child.stdout.on('data', (chunk: string) => {
      if (!onProgress) return;
      progressText = (progressText + chunk).slice(-64);
      // GDAL's terminal progress: "0...10...20...(...)90...100 - done."
      const all = [...progressText.matchAll(/(\d{1,3})(?:\.\.\.| - done)/g)];
      const last = all[all.length - 1];
      if (last) onProgress(Math.min(100, Number(last[1])) / 100);
    });
    child.stderr.setEncoding('utf8');
    child.stderr.on('data', (chunk: string) => {
      stderr = (stderr + chunk).slice(-STDERR_KEEP);
    });
    child.once('error', (err) => {
      spawnError = err;
    });
    child.once('close', (code, exitSignal) => {
      signal?.removeEventListener('abort', onAbort);
      if (signal?.aborted) return reject(signal.reason as Error);
      if (spawnError)
        return reject(new GdalCliError(program, `${program} could not be started: ${spawnError.message}`, null, null));
      if (code === 0) return resolve();
      const fallback = exitSignal ? `${program} was killed by ${exitSignal}` : `${program} exited with ${code}`;
      reject(new GdalCliError(program, gdalCliMessage(stderr, fallback), code, exitSignal));
    });
  });
}
