/** Server processes of the soak (apps/server main.ts in a role), their output and their deaths. */
import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const MAIN = fileURLToPath(new URL('../../apps/server/src/main.ts', import.meta.url));
const SERVER_DIR = fileURLToPath(new URL('../../apps/server/', import.meta.url));

export interface ServerProcess {
  role: string;
  child: ChildProcess;
  /** The API's URL (role api or all). */
  url: string | null;
  output(): string;
  exited: Promise<number | null>;
  /** The next exit is ours (SIGKILL by the chaos loop or at the end), not a crash. */
  expectDeath(): void;
}

/** Starts main.ts with `env` and resolves once it says it is ready; `onCrash` hears of any other exit. */
export function startServer(
  env: Record<string, string>,
  onCrash: (p: ServerProcess, code: number | null) => void,
): Promise<ServerProcess> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', MAIN], {
      cwd: SERVER_DIR,
      env: { ...process.env, ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    let expected = false;
    let ready = false;
    const p: ServerProcess = {
      role: env['CM_ROLE'] ?? 'all',
      child,
      url: null,
      output: () => out,
      exited: new Promise((r) => child.once('exit', (code) => r(code))),
      expectDeath: () => {
        expected = true;
      },
    };
    const timer = setTimeout(() => reject(new Error(`server not ready within 120 s: ${out.slice(-2000)}`)), 120_000);
    const onData = (d: Buffer) => {
      out = (out + String(d)).slice(-20_000);
      const m = /CoreMachine \w+ ready(?: at (http:\/\/\S+))?/.exec(out);
      if (!ready && m) {
        ready = true;
        clearTimeout(timer);
        p.url = m[1] ?? null;
        resolve(p);
      }
    };
    child.stdout!.on('data', onData);
    child.stderr!.on('data', onData);
    void p.exited.then((code) => {
      clearTimeout(timer);
      if (!ready) reject(new Error(`server exited with ${code} before it was ready: ${out.slice(-2000)}`));
      else if (!expected) onCrash(p, code);
    });
  });
}
