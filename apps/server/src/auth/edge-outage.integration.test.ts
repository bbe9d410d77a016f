/**
 * The edge while PostgreSQL is down (a cluster of the test's own, stopped and started): it
 * cannot ask whether tokens exist, yet /readyz and /health still answer 503 (not a 500 from the
 * edge), and 200 again once PostgreSQL is back.
 */
import { startPostgres, type PgInstance } from '@coremachine/test-kit';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createApp, type App } from '../app.ts';
import { parseEnv } from '../env.ts';

describe('the edge with PostgreSQL unreachable', () => {
  let pgi: PgInstance;
  let app: App;
  beforeAll(async () => {
    pgi = await startPostgres();
    app = await createApp({
      env: parseEnv({ DATABASE_URL: pgi.url, CM_API_PORT: '0', CM_ROLE: 'api', CM_LOG_LEVEL: 'silent' }),
    });
  }, 60_000);
  afterAll(async () => {
    await app?.close().catch(() => undefined);
    await pgi?.destroy();
  });

  it('answers /readyz 503 during the outage and 200 after', async () => {
    const status = async (path: string) => (await fetch(`${app.url}${path}`)).status;
    expect(await status('/readyz')).toBe(200);
    expect(await status('/api/v1/jobs')).toBe(200);
    await new Promise((r) => setTimeout(r, 1100)); // past the edge's one-second cache
    await pgi.stop('immediate');
    const t0 = Date.now();
    expect(await status('/readyz')).toBe(503);
    expect(Date.now() - t0).toBeLessThan(3000);
    expect(await status('/health')).toBe(503);
    await pgi.start();
    let ready = 0;
    for (let i = 0; i < 100 && ready !== 200; i++) {
      ready = await status('/readyz');
      if (ready !== 200) await new Promise((r) => setTimeout(r, 100));
    }
    expect(ready).toBe(200);
    expect(await status('/api/v1/jobs')).toBe(200);
  }, 60_000);
});
