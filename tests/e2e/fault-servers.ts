/** Server processes (apps/server main.ts) for the fault tests, and free ports for their infrastructure. */
import type { ChildProcess } from 'node:child_process';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { SERVER_DIR, startTs } from './helpers.ts';

export interface ServerProcess {
  child: ChildProcess;
  /** The API's base URL (roles `api` and `all`), else null. */
  url: string | null;
  output: () => string;
}

/** A TCP port nothing listens on right now (the kernel's pick). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as { port: number };
      srv.close(() => resolve(port));
    });
  });
}

/**
 * Starts `apps/server/src/main.ts` with `env` (CM_ROLE decides api, worker or all) and resolves
 * once it says it is ready; an `api`/`all` process listens on the port it prints.
 */
export async function startServerProcess(env: Record<string, string>): Promise<ServerProcess> {
  const { child, output } = await startTs(join(SERVER_DIR, 'src/main.ts'), [], /CoreMachine \w+ ready/, { env });
  await new Promise((r) => setTimeout(r, 50)); // the rest of the ready line
  const url = /ready at (http:\/\/\S+)/.exec(output())?.[1] ?? null;
  return { child, url, output };
}
