import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { rasterFixtures as fx } from '@coremachine/geo/raster';
import { createStorage, storageConfigFromEnv } from '@coremachine/storage';
import { createTestMachine, type TestMachine } from '@coremachine/test-kit';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import processRaster from '../src/index.ts';

const storage = createStorage(storageConfigFromEnv());
const prefix = `test-cleanup-${randomBytes(4).toString('hex')}`;
let dir: string;
let tm: TestMachine;

beforeAll(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'cm-process-cleanup-'));
  await storage.ensureContainer('bronze');
  // A STAC store whose tables do not exist: the COG is written, then its registration fails.
  tm = await createTestMachine({
    plugins: [processRaster],
    services: { stac: { schema: `missing_stac_${randomBytes(3).toString('hex')}` } },
    config: { maxAttempts: 2, retryBaseDelayMs: 50, retryMaxDelayMs: 100 },
  });
});
afterAll(async () => {
  await tm?.close();
  for (const c of ['bronze', 'silver'])
    for await (const b of storage.list(c, { prefix: `${prefix}/` })) await storage.delete(c, b.name);
  await rm(dir, { recursive: true, force: true });
});

describe('process_raster leaves nothing behind', () => {
  it.each([
    ['the single task', {}],
    ['the tiled assembly', { tiled_threshold_mb: 0, window_size: 128 }],
  ])(
    '%s: a COG whose STAC registration fails is removed, the job fails naming the cause, no blob left',
    async (_, extra) => {
      const blob = `${prefix}/${randomBytes(3).toString('hex')}/dem.tif`;
      await storage.uploadFile('bronze', blob, fx.demUtm(dir));
      const job = await tm.submitAndWait('process_raster', { blob_name: blob, ...extra }, { timeoutMs: 120_000 });
      expect(job.status).toBe('failed');
      // A database error, not a missing blob (it was read as GDAL's "does not exist" before).
      expect(job.error).toMatchObject({ code: 'TASK_ERROR', stage: 'create_cog' });
      expect(job.error?.message).toContain('does not exist');
      const failed = (await tm.tasks(job.id)).filter((t) => t.status === 'failed');
      expect(failed.map((t) => t.attempts)).toEqual([2]);
      const left: string[] = [];
      for await (const b of storage.list('silver', { prefix: blob.replace(/dem\.tif$/, '') })) left.push(b.name);
      expect(left).toEqual([]);
    },
  );
});
