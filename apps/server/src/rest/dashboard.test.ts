import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { dashboardRoute } from './dashboard.ts';

/** A server answering with the dashboard route alone (404 when it declines). */
function serve(dist: string): Promise<{ server: Server; url: string }> {
  const route = dashboardRoute(dist);
  const server = createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://localhost');
    void route(req, res, url).then((answered) => {
      if (!answered) res.writeHead(404).end('declined');
    });
  });
  return new Promise((resolve) =>
    server.listen(0, '127.0.0.1', () =>
      resolve({ server, url: `http://127.0.0.1:${(server.address() as AddressInfo).port}` }),
    ),
  );
}

describe('dashboard route', () => {
  const built = mkdtempSync(join(tmpdir(), 'cm-dash-'));
  mkdirSync(join(built, 'assets'));
  writeFileSync(join(built, 'index.html'), '<!doctype html><div id="root"></div>');
  writeFileSync(join(built, 'assets', 'app-1234.js'), 'console.log(1)');
  writeFileSync(join(tmpdir(), 'cm-dash-secret.txt'), 'secret');
  let withBuild: { server: Server; url: string };
  let without: { server: Server; url: string };
  beforeAll(async () => {
    withBuild = await serve(built);
    without = await serve(join(built, 'missing'));
  });
  afterAll(() => {
    withBuild.server.close();
    without.server.close();
  });

  it('serves the build, index.html for every page path, hashed assets cached for a year', async () => {
    for (const path of ['/', '/jobs', `/jobs/${'a'.repeat(64)}`, '/submit?type=hello_world']) {
      const res = await fetch(withBuild.url + path);
      expect([path, res.status, res.headers.get('content-type')]).toEqual([path, 200, 'text/html; charset=utf-8']);
      expect(await res.text()).toBe('<!doctype html><div id="root"></div>');
    }
    const asset = await fetch(`${withBuild.url}/assets/app-1234.js`);
    expect(asset.status).toBe(200);
    expect(asset.headers.get('content-type')).toBe('text/javascript; charset=utf-8');
    expect(asset.headers.get('cache-control')).toBe('public, max-age=31536000, immutable');
    expect(await asset.text()).toBe('console.log(1)');
  });

  it('declines API paths, missing assets and paths out of the build folder', async () => {
    for (const path of ['/trpc/health', '/health', '/stac/collections', '/features', '/assets/gone.js', '/x.png'])
      expect([path, (await fetch(withBuild.url + path)).status]).toEqual([path, 404]);
    const escape = await fetch(`${withBuild.url}/..%2fcm-dash-secret.txt`);
    expect(await escape.text()).not.toBe('secret');
  });

  it('says how to build the dashboard when the build is missing', async () => {
    const res = await fetch(`${without.url}/jobs`);
    expect(res.status).toBe(503);
    const text = await res.text();
    expect(text).toContain('The dashboard is not built');
    expect(text).toContain('pnpm --filter @coremachine/dashboard build');
  });
});
