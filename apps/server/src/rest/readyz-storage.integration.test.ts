/**
 * /readyz with storage unreachable: an Azurite of the test's own (its port, its folder) serves
 * the app's storage; stopped, /readyz answers 503 naming storage within about a second (and
 * /healthz still 200: the process answers); started again, 200.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createStorage, ensureAzurite, parseStorageConfig, type AzuriteHandle } from '@coremachine/storage';
import { dropSchemas, freePort, uniqueSchema } from '@coremachine/test-kit';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createApp, type App } from '../app.ts';
import { parseEnv } from '../env.ts';

describe('/readyz with storage unreachable', () => {
  const schema = uniqueSchema('cmready');
  let app: App;
  let azurite: AzuriteHandle | null = null;
  let port: number;
  let location: string;

  beforeAll(async () => {
    port = await freePort();
    location = await mkdtemp(join(tmpdir(), 'cm-ready-azurite-'));
    azurite = await ensureAzurite({ port, location });
    const storage = createStorage(parseStorageConfig({ kind: 'azurite', endpoint: azurite.endpoint }));
    await storage.ensureContainer('bronze');
    app = await createApp({
      env: parseEnv({ CM_API_PORT: '0', CM_SCHEMA: schema, CM_ROLE: 'api', CM_LOG_LEVEL: 'silent' }),
      services: { storage },
    });
  }, 60_000);
  afterAll(async () => {
    await app?.close();
    await azurite?.stop();
    await dropSchemas(schema);
    await rm(location, { recursive: true, force: true });
  });

  it('answers 503 naming storage while it is down and 200 once it is back', async () => {
    const ready = async () => {
      const res = await fetch(`${app.url}/readyz`);
      return { status: res.status, body: (await res.json()) as Record<string, { ok: boolean; error?: string }> };
    };
    const up = await ready();
    expect(up.status).toBe(200);
    expect([up.body['database']?.ok, up.body['storage']?.ok]).toEqual([true, true]);

    await azurite!.stop();
    azurite = null;
    const t0 = Date.now();
    const down = await ready();
    expect(Date.now() - t0).toBeLessThan(3000);
    expect(down.status).toBe(503);
    expect([down.body['database']?.ok, down.body['storage']?.ok]).toEqual([true, false]);
    expect(down.body['storage']?.error).toBeTruthy();
    expect((await fetch(`${app.url}/healthz`)).status).toBe(200);

    azurite = await ensureAzurite({ port, location });
    let again = await ready();
    for (let i = 0; i < 50 && again.status !== 200; i++) {
      await new Promise((r) => setTimeout(r, 100));
      again = await ready();
    }
    expect(again.status).toBe(200);
  }, 60_000);
});
