import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { ensureStacStore, getItem, rasterItemId } from '@coremachine/geo/stac';
import { createStorage, storageConfigFromEnv, type BlobStorage } from '@coremachine/storage';
import { createTestMachine, type TestMachine } from '@coremachine/test-kit';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import job from '../src/index.ts';
import { makeCog, tmp } from './fixtures.ts';

/** What GDAL reports for a TIFF with a pixel scale and tie point but no GeoKeys. */
export const LOCAL_CS =
  'LOCAL_CS["Cartesian (Meter)",LOCAL_DATUM["Local Datum",0],UNIT["metre",1],AXIS["X",EAST],AXIS["Y",NORTH]]';

const container = `stacmix-${randomBytes(4).toString('hex')}`;
const stacSchema = `stac_mix_${randomBytes(4).toString('hex')}`;
let tm: TestMachine;
let storage: BlobStorage;

beforeAll(async () => {
  storage = createStorage(storageConfigFromEnv());
  await storage.ensureContainer(container);
  const dir = tmp();
  for (let i = 0; i < 7; i++) {
    const name = `dem-${i}.tif`;
    await storage.uploadFile(container, `mix/${name}`, makeCog(dir, name, { originX: 500000 + i * 5000, size: 64 }));
  }
  // Sorted among the good ones (name order), so they are in the middle of the batch: a local CRS,
  // no CRS at all, and a file cut short (its header reads, its first strip does not).
  await storage.uploadFile(container, 'mix/dem-3-local.tif', makeCog(dir, 'local.tif', { srs: LOCAL_CS, size: 64 }));
  await storage.uploadFile(container, 'mix/dem-1-nocrs.tif', makeCog(dir, 'nocrs.tif', { srs: null, size: 64 }));
  const whole = readFileSync(makeCog(dir, 'whole.tif', { size: 64, value: 3 }));
  await storage.uploadData(container, 'mix/dem-5-truncated.tif', whole.subarray(0, Math.min(600, whole.length - 1)));
  // Names that one readable id would confuse.
  const names = ['ids/dem/x.tif', 'ids/dem-x.tif', 'ids/a b.tif', 'ids/a-b.tif'];
  for (const [i, name] of names.entries()) {
    await storage.uploadFile(
      container,
      name,
      makeCog(dir, `id${i}.tif`, { originX: 600000 + i * 5000, value: 10 + i, size: 32 }),
    );
  }
  tm = await createTestMachine({ plugins: [job], services: { storage, stac: { schema: stacSchema } } });
  await ensureStacStore(tm.pool, stacSchema);
});

afterAll(async () => {
  await tm?.close();
  await storage?.deleteContainer(container);
  await import('@coremachine/core-machine').then(async ({ createPool }) => {
    const pool = createPool(process.env.DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/coremachine', 1);
    await pool.query(`DROP SCHEMA IF EXISTS "${stacSchema}" CASCADE`);
    await pool.end();
  });
});

describe('stac_catalog_container over a batch with a local-CRS, a no-CRS and a truncated raster', () => {
  it('catalogues the 7 good rasters and fails only the bad ones, at attempt 1, each with its own file and code', async () => {
    const done = await tm.submitAndWait('stac_catalog_container', { container_name: container, prefix: 'mix/' });
    expect(done.status).toBe('completed_with_errors');
    expect(done.result).toMatchObject({
      summary: { total_files_found: 10, files_processed: 10, inserted: 7, updated: 0, failed: 3 },
    });
    const failures = (done.result as { failures: Array<{ blob: string; code: string; message: string }> }).failures;
    expect(failures.map((f) => [f.blob, f.code])).toEqual([
      ['mix/dem-1-nocrs.tif', 'RASTER_NO_CRS'],
      ['mix/dem-3-local.tif', 'CRS_NOT_GEOREFERENCED'],
      ['mix/dem-5-truncated.tif', 'RASTER_UNREADABLE'],
    ]);
    for (const f of failures) {
      expect(f.message).toContain(`${container}/${f.blob}`);
      expect(f.message).not.toMatch(/dem-[0-6]\.tif|\/vsimem\//);
    }
    expect(failures[1]!.message).toContain('ENGCRS["Cartesian (Meter)"]');

    const items = await tm.pool.query<{ id: string }>(`SELECT id FROM "${stacSchema}".items ORDER BY id`);
    expect(items.rows.map((r) => r.id)).toHaveLength(7);
    expect(items.rows.map((r) => r.id).every((id) => !id.includes('local'))).toBe(true);

    // One batch task, failed permanently at its first attempt: no retry was spent.
    const tasks = await tm.tasks(done.id, { stage: 2 });
    expect(tasks.map((t) => [t.status, t.attempts, t.error?.code])).toEqual([['failed', 1, 'RASTERS_NOT_CATALOGUED']]);
    const stored = JSON.stringify(tasks[0]!.error);
    expect(stored).not.toMatch(/\.ts:\d+|\/vsiaz\/|\/tmp\//);
  });

  it('gives blobs whose names look alike (dem/x.tif, dem-x.tif, a b.tif, a-b.tif) one item each, the same on a re-run', async () => {
    const first = await tm.submitAndWait('stac_catalog_container', { container_name: container, prefix: 'ids/' });
    expect(first.status).toBe('completed');
    expect(first.result).toMatchObject({ summary: { total_files_found: 4, inserted: 4, updated: 0, failed: 0 } });
    const ids = ['ids/dem/x.tif', 'ids/dem-x.tif', 'ids/a b.tif', 'ids/a-b.tif'].map((b) => rasterItemId(container, b));
    expect(new Set(ids).size).toBe(4);
    for (const [i, id] of ids.entries()) {
      const item = await getItem(tm.pool, stacSchema, 'dev', id);
      expect(item?.properties['coremachine:blob']).toBe(
        ['ids/dem/x.tif', 'ids/dem-x.tif', 'ids/a b.tif', 'ids/a-b.tif'][i],
      );
      expect(
        (item?.assets.data?.['raster:bands'] as Array<{ statistics: { minimum: number } }>)[0]!.statistics.minimum,
      ).toBe(10 + i);
    }
    // Other parameters (same ones would return the first job: submissions are idempotent).
    const again = await tm.submitAndWait('stac_catalog_container', {
      container_name: container,
      prefix: 'ids/',
      batch_size: 2,
    });
    expect(again.result).toMatchObject({ summary: { inserted: 0, updated: 4, failed: 0 } });
  });
});
