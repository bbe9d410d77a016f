/**
 * A test-only TCP proxy on 127.0.0.1 (node `net`), to partition one process from a server (its
 * PostgreSQL): `cut()` destroys every proxied connection and refuses new ones (accepted and reset
 * at once) until `restore()`.
 *
 * @example
 *   const proxy = await startTcpProxy(pgPort);
 *   const url = pgUrl.replace(`:${pgPort}/`, `:${proxy.port}/`);
 *   proxy.cut(); ...; proxy.restore();
 */
import { connect, createServer, type Socket } from 'node:net';

export interface TcpProxy {
  /** The port the proxy listens on (127.0.0.1). */
  port: number;
  /** Connections proxied so far, and connections refused while cut. */
  stats: { accepted: number; refused: number; live: number };
  cut(): void;
  restore(): void;
  close(): Promise<void>;
}

export async function startTcpProxy(targetPort: number, targetHost = '127.0.0.1'): Promise<TcpProxy> {
  let isCut = false;
  const pairs = new Set<[Socket, Socket]>();
  const stats = { accepted: 0, refused: 0, live: 0 };
  const server = createServer((client) => {
    if (isCut) {
      stats.refused++;
      client.resetAndDestroy();
      return;
    }
    stats.accepted++;
    const upstream = connect({ port: targetPort, host: targetHost });
    const pair: [Socket, Socket] = [client, upstream];
    pairs.add(pair);
    stats.live = pairs.size;
    const end = () => {
      client.destroy();
      upstream.destroy();
      pairs.delete(pair);
      stats.live = pairs.size;
    };
    client.on('error', end).on('close', end);
    upstream.on('error', end).on('close', end);
    client.pipe(upstream);
    upstream.pipe(client);
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const { port } = server.address() as { port: number };
  const cut = () => {
    isCut = true;
    for (const [client, upstream] of pairs) {
      client.resetAndDestroy();
      upstream.destroy();
    }
    pairs.clear();
    stats.live = 0;
  };
  return {
    port,
    stats,
    cut,
    restore() {
      isCut = false;
    },
    close() {
      cut();
      return new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
