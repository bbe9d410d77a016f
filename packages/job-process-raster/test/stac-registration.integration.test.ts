import { randomBytes } from 'node:crypto';
import { mkdtemp } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { ensureStacStore, getItem, rasterItemId } from '@coremachine/geo/stac';
import { rasterFixtures as fx } from '@coremachine/geo/raster';
import { createStorage, storageConfigFromEnv } from '@coremachine/storage';
import { createTestMachine, type TestMachine } from '@coremachine/test-kit';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import processRaster from '../src/index.ts';

const storage = createStorage(storageConfigFromEnv());
const tag = randomBytes(4).toString('hex');
const stacSchema = `stac_pr_${tag}`;
let tm: TestMachine;

beforeAll(async () => {
  tm = await createTestMachine({ plugins: [processRaster], services: { storage, stac: { schema: stacSchema } } });
  await ensureStacStore(tm.pool, stacSchema);
});
afterAll(async () => {
  await tm.pool.query(`DROP SCHEMA IF EXISTS "${stacSchema}" CASCADE`);
  await tm.close();
});

describe('process_raster → STAC', () => {
  it('registers the COG it writes as an item of the cogs collection, once however often it runs', async () => {
    const local = fx.rgb3857(await mkdtemp(path.join(os.tmpdir(), 'cm-pr-stac-')));
    const blob = `test-stac-${tag}/${path.basename(local)}`;
    await storage.uploadFile('bronze', blob, local);
    const job = await tm.submitAndWait('process_raster', { blob_name: blob });
    expect(job.status).toBe('completed');
    const [task] = await tm.tasks(job.id, { stage: 2 });
    const out = task!.output as { cog_container: string; cog_blob: string; stac_item_id: string };
    expect(out.stac_item_id).toBe(rasterItemId(out.cog_container, out.cog_blob));
    const item = await getItem(tm.pool, stacSchema, 'cogs', out.stac_item_id);
    expect(item!.assets.data).toMatchObject({
      href: storage.blobUrl(out.cog_container, out.cog_blob),
      type: 'image/tiff; application=geotiff; profile=cloud-optimized',
    });
    expect(item!.properties['proj:code']).toBe('EPSG:4326');
    await tm.submitAndWait('process_raster', { blob_name: blob, compression: 'deflate' });
    const { rows } = await tm.pool.query(
      `SELECT count(*)::int AS n FROM "${stacSchema}".items WHERE collection = 'cogs'`,
    );
    expect(rows[0].n).toBe(1);
  });
});
