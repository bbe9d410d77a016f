import { randomBytes } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { buildBlobRasterItem, ensureStacStore, getItem, rasterItemId, type StacItem } from '@coremachine/geo/stac';
import { createStorage, storageConfigFromEnv, type BlobStorage } from '@coremachine/storage';
import { createTestMachine, type TestMachine } from '@coremachine/test-kit';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import job from '../src/index.ts';
import { makeCog, tmp } from './fixtures.ts';

const container = `stacjob-${randomBytes(4).toString('hex')}`;
const stacSchema = `stac_job_${randomBytes(4).toString('hex')}`;
let tm: TestMachine;
let storage: BlobStorage;

beforeAll(async () => {
  storage = createStorage(storageConfigFromEnv());
  await storage.ensureContainer(container);
  const dir = tmp();
  await storage.uploadFile(
    container,
    'dem/a.tif',
    makeCog(dir, 'a.tif', { originX: 500000, value: 11, datetime: '2019:07:01 08:00:00' }),
  );
  await storage.uploadFile(container, 'dem/b.TIF', makeCog(dir, 'b.tif', { originX: 510000, value: 22 }));
  await storage.uploadFile(container, 'dem/sub dir/c.tiff', makeCog(dir, 'c.tif', { originX: 520000, value: 33 }));
  await storage.uploadFile(container, 'dem/nocrs.tif', makeCog(dir, 'nocrs.tif', { srs: null }));
  writeFileSync(join(dir, 'notes.txt'), 'not a raster');
  await storage.uploadFile(container, 'dem/readme.txt', join(dir, 'notes.txt'));
  await storage.uploadFile(container, 'broken/bad.tif', join(dir, 'notes.txt'));
  // No CRS in the file, but one in its .aux.xml sidecar: only GDAL reading it in place sees it.
  await storage.uploadFile(container, 'side/s.tif', makeCog(dir, 's.tif', { srs: null }));
  await storage.uploadData(container, 'side/s.tif.aux.xml', '<PAMDataset><SRS>EPSG:32631</SRS></PAMDataset>');
  tm = await createTestMachine({ plugins: [job], services: { storage, stac: { schema: stacSchema } } });
  await ensureStacStore(tm.pool, stacSchema);
});

afterAll(async () => {
  await tm?.close();
  await storage?.deleteContainer(container);
  const { createPool } = await import('@coremachine/core-machine');
  const pool = createPool(process.env.DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/coremachine', 1);
  await pool.query(`DROP SCHEMA IF EXISTS "${stacSchema}" CASCADE`);
  await pool.end();
});

const rows = async () =>
  (
    await tm.pool.query<{ id: string; collection: string }>(
      `SELECT id, collection FROM "${stacSchema}".items ORDER BY id`,
    )
  ).rows;

describe('stac_catalog_container', () => {
  it('declares the services it uses: a machine without a STAC store refuses to start, naming it', async () => {
    // Undeclared, the machine started and the job's first task failed TASK_ERROR "Cannot read properties of undefined".
    const started = createTestMachine({ plugins: [job], services: { storage }, worker: false });
    await expect(started).rejects.toMatchObject({
      code: 'CM_ERR_SERVICE_MISSING',
      message: expect.stringContaining("stac_catalog_container needs service 'stac'"),
    });
  });

  it('catalogues the rasters under a prefix, one item each, with stable ids and blob-URL hrefs', async () => {
    const job1 = await tm.submitAndWait('stac_catalog_container', {
      container_name: container,
      prefix: 'dem/',
      batch_size: 1,
    });
    expect(job1.status).toBe('completed_with_errors');
    expect(job1.stages.map((s) => [s.name, s.total, s.completed, s.failed])).toEqual([
      ['list_rasters', 1, 1, 0],
      ['catalog_rasters', 4, 3, 1],
    ]);
    expect(job1.result).toMatchObject({
      job_type: 'stac_catalog_container',
      collection_id: 'dev',
      container_name: container,
      prefix: 'dem/',
      summary: { total_files_found: 4, files_processed: 4, inserted: 3, updated: 0, failed: 1, success_rate: 0.75 },
      failures: [{ blob: 'dem/nocrs.tif', code: 'RASTER_NO_CRS' }],
      scan: { total_blobs_scanned: 5, limit_applied: false },
      tasks_by_status: { completed: 4, failed: 1 },
    });
    expect(await rows()).toEqual([
      { id: rasterItemId(container, 'dem/a.tif'), collection: 'dev' },
      { id: rasterItemId(container, 'dem/b.TIF'), collection: 'dev' },
      { id: rasterItemId(container, 'dem/sub dir/c.tiff'), collection: 'dev' },
    ]);
    const a = (await getItem(tm.pool, stacSchema, 'dev', rasterItemId(container, 'dem/a.tif'))) as StacItem;
    expect(a.properties.datetime).toBe('2019-07-01T08:00:00Z');
    expect(a.assets.data!.href).toBe(storage.blobUrl(container, 'dem/a.tif'));
    expect(a.assets.data!.href).not.toContain('?');
    expect(a.assets.data!.type).toBe('image/tiff; application=geotiff; profile=cloud-optimized');
    expect(a.assets.data!['file:checksum']).toMatch(/^1220[0-9a-f]{64}$/);
    expect((a.assets.data!['raster:bands'] as Array<{ statistics: object }>)[0]!.statistics).toMatchObject({
      minimum: 11,
      maximum: 11,
      mean: 11,
      valid_percent: 100,
    });
    expect(a.bbox![0]).toBeCloseTo(3, 5);
    const b = (await getItem(tm.pool, stacSchema, 'dev', rasterItemId(container, 'dem/b.TIF'))) as StacItem;
    // No TIFF datetime: the blob's last-modified, not the time of cataloguing.
    const stat = await storage.stat(container, 'dem/b.TIF');
    expect(stat.exists && b.properties.datetime).toBe(stat.exists ? stat.lastModified.toISOString() : null);
  });

  it('re-running (one batch by default this time) updates the same items and never duplicates them', async () => {
    const before = await rows();
    const a = await getItem(tm.pool, stacSchema, 'dev', rasterItemId(container, 'dem/a.tif'));
    const job2 = await tm.submitAndWait('stac_catalog_container', { container_name: container, prefix: 'dem/' });
    expect(job2.stages[1]).toMatchObject({ total: 1, completed: 0, failed: 1 });
    expect(job2.result).toMatchObject({
      summary: { total_files_found: 4, inserted: 0, updated: 3, failed: 1 },
      failures: [{ blob: 'dem/nocrs.tif', code: 'RASTER_NO_CRS' }],
    });
    expect(await rows()).toEqual(before);
    expect(await getItem(tm.pool, stacSchema, 'dev', rasterItemId(container, 'dem/a.tif'))).toEqual(a);
  });

  it('builds the same item from memory (listed, one GET) as in place through /vsiaz/ (stat, stream, GDAL range reads)', async () => {
    const stat = await storage.stat(container, 'dem/b.TIF');
    if (!stat.exists) throw new Error('dem/b.TIF missing');
    const listed = { size: stat.size, lastModified: stat.lastModified, selfContained: true };
    const inMemory = await buildBlobRasterItem(storage, container, 'dem/b.TIF', { collection: 'dev', listed });
    const inPlace = await buildBlobRasterItem(storage, container, 'dem/b.TIF', { collection: 'dev' });
    expect(inMemory).toEqual(inPlace);
    expect(inMemory!.assets.data!['file:checksum']).toMatch(/^1220[0-9a-f]{64}$/);
    // Gone since it was listed: null (BLOB_NOT_FOUND), on both paths.
    expect(await buildBlobRasterItem(storage, container, 'dem/gone.tif', { collection: 'dev', listed })).toBeNull();
    expect(
      await buildBlobRasterItem(storage, container, 'dem/gone.tif', {
        collection: 'dev',
        listed: { ...listed, selfContained: false },
      }),
    ).toBeNull();
    // A failure names the blob, not the in-memory copy.
    await expect(
      buildBlobRasterItem(storage, container, 'dem/nocrs.tif', { collection: 'dev', listed: { ...listed, size: 1 } }),
    ).rejects.toThrow(`${container}/dem/nocrs.tif has no CRS`);
  });

  it('reads a raster with sidecar files in place, so GDAL sees them (CRS from its .aux.xml)', async () => {
    const job = await tm.submitAndWait('stac_catalog_container', { container_name: container, prefix: 'side/' });
    expect(job.result).toMatchObject({ summary: { total_files_found: 1, inserted: 1, failed: 0 } });
    const s = (await getItem(tm.pool, stacSchema, 'dev', rasterItemId(container, 'side/s.tif'))) as StacItem;
    expect(s.properties['proj:code']).toBe('EPSG:32631');
    expect(s.assets.data!['file:checksum']).toMatch(/^1220[0-9a-f]{64}$/);
  });

  it('reports an unreadable .tif as RASTER_UNREADABLE, permanently (one attempt)', async () => {
    const job3 = await tm.submitAndWait('stac_catalog_container', { container_name: container, prefix: 'broken/' });
    expect(job3.result).toMatchObject({
      summary: { total_files_found: 1, failed: 1, success_rate: 0 },
      failures: [{ blob: 'broken/bad.tif', code: 'RASTER_UNREADABLE' }],
    });
    const [task] = await tm.tasks(job3.id, { stage: 2 });
    expect(task!.attempts).toBe(1);
  });

  it('completes with zeros when no raster matches', async () => {
    const job4 = await tm.submitAndWait('stac_catalog_container', {
      container_name: container,
      prefix: 'nothing-here/',
    });
    expect(job4.status).toBe('completed');
    expect(job4.result).toMatchObject({
      summary: { total_files_found: 0, files_processed: 0, inserted: 0, updated: 0, failed: 0, success_rate: 0 },
      total_tasks_executed: 1,
    });
  });

  it('honours limit and extensions', async () => {
    const job5 = await tm.submitAndWait('stac_catalog_container', {
      container_name: container,
      prefix: 'dem/',
      extensions: ['TIFF'],
      limit: 1,
      collection_id: 'cogs',
    });
    expect(job5.result).toMatchObject({ extensions: ['.tiff'], summary: { total_files_found: 1, inserted: 1 } });
    expect((await rows()).filter((r) => r.collection === 'cogs').map((r) => r.id)).toEqual([
      rasterItemId(container, 'dem/sub dir/c.tiff'),
    ]);
  });

  it('fails the job when the collection does not exist', async () => {
    const job6 = await tm.submitAndWait('stac_catalog_container', { container_name: container, collection_id: 'nope' });
    expect(job6.status).toBe('failed');
    expect(job6.error).toMatchObject({ code: 'STAC_COLLECTION_NOT_FOUND', message: expect.stringContaining('"nope"') });
  });

  it('rejects wrong parameters, naming the field', async () => {
    await expect(tm.submit('stac_catalog_container', { container_name: 'Bad_Name!' })).rejects.toThrow(
      /container_name/,
    );
    await expect(tm.submit('stac_catalog_container', { container_name: container, limit: 0 })).rejects.toThrow(/limit/);
    await expect(
      tm.submit('stac_catalog_container', { container_name: container, extensions: ['a/b'] }),
    ).rejects.toThrow(/extensions/);
    await expect(
      tm.submit('stac_catalog_container', { container_name: container, collection_id: 'a b' }),
    ).rejects.toThrow(/collection_id/);
    await expect(
      tm.submit('stac_catalog_container', { container_name: container, colection_id: 'dev' }),
    ).rejects.toThrow(/colection_id/);
  });
});
