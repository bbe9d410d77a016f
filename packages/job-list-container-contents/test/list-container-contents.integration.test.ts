import { createStorage, storageConfigFromEnv, type BlobStorage } from '@coremachine/storage';
import { createSampleTree, EARLY_BLOBS, LATE_BLOBS, sdkListAll, type SdkBlob } from '@coremachine/storage/testing';
import { createTestMachine, type TestMachine } from '@coremachine/test-kit';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import listContainerContents, { INVENTORY_TABLE } from '../src/index.ts';

const config = storageConfigFromEnv();
const storage = createStorage(config);
const suffix = `${process.pid}-${Date.now().toString(36)}`;
const TREE = `lst-tree-${suffix}`;
const EMPTY = `lst-empty-${suffix}`;
const VICTIMS = `lst-victims-${suffix}`;
const MiB = 1024 ** 2;

const extOf = (name: string) => {
  const base = name.split('/').pop()!;
  return base.lastIndexOf('.') > 0 ? base.slice(base.lastIndexOf('.')).toLowerCase() : 'no_extension';
};

let tm: TestMachine;
let sdk: SdkBlob[];
const jobIds: string[] = [];

beforeAll(async () => {
  await createSampleTree(config, TREE);
  await storage.ensureContainer(EMPTY);
  sdk = await sdkListAll(config, TREE);
  tm = await createTestMachine({ plugins: [listContainerContents] });
});
afterAll(async () => {
  if (tm && jobIds.length) await tm.pool.query(`DELETE FROM ${INVENTORY_TABLE} WHERE job_id = ANY($1)`, [jobIds]);
  await tm?.close();
  for (const c of [TREE, EMPTY, VICTIMS]) await storage.deleteContainer(c);
});

async function run(params: Record<string, unknown>, machine = tm) {
  const job = await machine.submitAndWait(
    'list_container_contents',
    { container_name: TREE, ...params },
    { timeoutMs: 90_000 },
  );
  jobIds.push(job.id);
  return job;
}

/** The real client with its `stat` replaced (fault injection around real Azurite). */
function withStat(stat: BlobStorage['stat']): BlobStorage {
  return new Proxy(storage, {
    get: (target, prop) => {
      if (prop === 'stat') return stat;
      const v = Reflect.get(target, prop, target);
      return typeof v === 'function' ? v.bind(target) : v;
    },
  });
}

async function inventory(jobId: string) {
  const { rows } = await tm.pool.query(
    `SELECT ordinal, blob_name, size_bytes, extension, content_type, last_modified, etag, metadata, analyzed_at, error_code
     FROM ${INVENTORY_TABLE} WHERE job_id = $1 ORDER BY ordinal`,
    [jobId],
  );
  return rows;
}

describe('list_container_contents', () => {
  it('inventories every blob exactly as the SDK sees it, in batches', async () => {
    // verify_blobs: stage 2 reads each blob's own properties over the listed ones.
    const job = await run({ batch_size: 5, verify_blobs: true });
    expect(job.status, JSON.stringify(job.error)).toBe('completed');
    expect(sdk).toHaveLength(EARLY_BLOBS.length + LATE_BLOBS.length);
    expect(job.stages.map((s) => [s.name, s.status, s.total, s.completed, s.failed])).toEqual([
      ['list_blobs', 'completed', 1, 1, 0],
      ['analyze_blobs', 'completed', 5, 5, 0], // 22 blobs / 5
    ]);
    const rows = await inventory(job.id);
    expect(rows.map((r) => r.blob_name)).toEqual(sdk.map((b) => b.name));
    for (const [i, b] of sdk.entries()) {
      expect(rows[i]).toMatchObject({
        size_bytes: b.size,
        extension: extOf(b.name),
        content_type: b.contentType,
        etag: `"${b.etag.replace(/"/g, '')}"`,
        metadata: b.metadata,
        error_code: null,
      });
      expect(rows[i].last_modified.toISOString()).toBe(b.lastModified.toISOString());
    }
    expect(rows.find((r) => r.blob_name === 'raster/dem/elev.TIF')!.metadata).toEqual({
      source: 'survey',
      epsg: '32633',
    });

    const types: Record<string, number> = {};
    for (const b of sdk) types[extOf(b.name)] = (types[extOf(b.name)] ?? 0) + 1;
    const total = sdk.reduce((s, b) => s + b.size, 0);
    const r = job.result as any;
    expect(r.summary).toEqual({
      total_blobs_found: 22,
      blobs_analyzed: 22,
      successful_analyses: 22,
      failed_analyses: 0,
      success_rate: 100,
      total_size_bytes: total,
      total_size_mb: Math.round((total / MiB) * 1e4) / 1e4,
      total_size_gb: Math.round((total / 1024 ** 3) * 1e6) / 1e6,
      file_types: types,
      unique_extensions: Object.keys(types).length,
      largest_file: { name: 'big/twelve-gig.img', size_bytes: 12 * 1024 ** 3, size_mb: 12288 },
      errors_sample: [],
    });
    expect(types).toMatchObject({ '.tif': 3, '.tiff': 2, no_extension: 3, '.gdbtable': 1, '.img': 2 });
    expect(r.listing).toMatchObject({
      blobs_listed: 22,
      blobs_filtered: 0,
      total_count: 22,
      hit_file_limit: false,
      batch_count: 5,
    });
    expect(r).toMatchObject({
      stages_completed: 2,
      total_tasks_executed: 6,
      tasks_by_status: { completed: 6, failed: 0 },
      inventory: { table: INVENTORY_TABLE, job_id: job.id },
    });

    // Task inputs and outputs stay small: counts and ordinal ranges, never name lists or secrets.
    const tasks = await tm.tasks(job.id);
    expect(tasks.filter((t) => t.stage === 2).map((t) => t.input)).toEqual(
      [0, 1, 2, 3, 4].map((b) => ({ batch: b, first_ordinal: b * 5, end_ordinal: Math.min(22, b * 5 + 5) })),
    );
    const blob = JSON.stringify({
      tasks: tasks.map((t) => [t.input, t.output]),
      result: job.result,
      params: job.parameters,
    });
    expect(blob).not.toMatch(/sig=|AccountKey|SharedAccessSignature|raster\/ortho\/tile_001/);
  });

  it.each([
    ['prefix', { prefix: 'vector/' }, (b: SdkBlob) => b.name.startsWith('vector/')],
    ['extensions', { extensions: ['TIF', '.geojson'] }, (b: SdkBlob) => ['.tif', '.geojson'].includes(extOf(b.name))],
    ['min_size_mb', { min_size_mb: 100 }, (b: SdkBlob) => b.size >= 100 * MiB],
    ['max_size_mb', { max_size_mb: 0.002 }, (b: SdkBlob) => b.size <= 0.002 * MiB],
    [
      'combined',
      { prefix: 'raster/', extensions: ['tif', 'tiff'], min_size_mb: 0.003 },
      (b: SdkBlob) => b.name.startsWith('raster/') && b.size >= 0.003 * MiB,
    ],
  ])('filter: %s', async (_label, filter, pred) => {
    const want = sdk.filter(pred);
    expect(want.length).toBeGreaterThan(0);
    const job = await run({ filter });
    expect(job.status).toBe('completed');
    expect((await inventory(job.id)).map((r) => r.blob_name)).toEqual(want.map((b) => b.name));
    const r = job.result as any;
    expect(r.summary).toMatchObject({
      total_blobs_found: want.length,
      successful_analyses: want.length,
      total_size_bytes: want.reduce((s, b) => s + b.size, 0),
    });
    const scanned = sdk.filter((b) => b.name.startsWith((filter as { prefix?: string }).prefix ?? '')).length;
    expect(r.listing).toMatchObject({ blobs_listed: scanned, blobs_filtered: scanned - want.length });
  });

  it('applies file_limit after the filter', async () => {
    const job = await run({ file_limit: 2, filter: { extensions: ['.tif'] } });
    expect((await inventory(job.id)).map((r) => r.blob_name)).toEqual(['late/new.tif', 'raster/dem/elev.TIF']);
    expect((job.result as any).listing).toMatchObject({ total_count: 2, hit_file_limit: true });
    const all = await run({ file_limit: 22 });
    expect((all.result as any).listing).toMatchObject({ total_count: 22, hit_file_limit: false });
  });

  it('records a blob that vanished before analysis as a per-blob error and completes', async () => {
    await storage.ensureContainer(VICTIMS);
    for (const n of ['a.txt', 'b.txt', 'c.txt', 'gone.txt']) await storage.uploadData(VICTIMS, n, n);
    // The real client, except that `gone.txt` is deleted for real just before its properties are read.
    const vanishing = withStat(async (c, b, o) => {
      if (b === 'gone.txt') await storage.delete(c, b);
      return storage.stat(c, b, o);
    });
    const tm2 = await createTestMachine({ plugins: [listContainerContents], services: { storage: vanishing } });
    try {
      const job = await run({ container_name: VICTIMS, batch_size: 2, verify_blobs: true }, tm2);
      expect(job.status).toBe('completed');
      expect((job.result as any).summary).toMatchObject({
        total_blobs_found: 4,
        blobs_analyzed: 4,
        successful_analyses: 3,
        failed_analyses: 1,
        success_rate: 75,
        total_size_bytes: 15,
        file_types: { '.txt': 3 },
        errors_sample: [
          { blob_name: 'gone.txt', code: 'BLOB_NOT_FOUND', message: expect.stringContaining('gone.txt') },
        ],
      });
      const batches = await tm2.tasks(job.id, { stage: 2 });
      expect(batches.map((t) => [t.status, t.attempts])).toEqual([
        ['completed', 1],
        ['completed', 1],
      ]);
    } finally {
      await tm2.pool.query(`DELETE FROM ${INVENTORY_TABLE} WHERE job_id = ANY($1)`, [jobIds]);
      await tm2.close();
    }
  });

  it('retries a batch on transient errors, then records what still fails', async () => {
    await storage.ensureContainer(VICTIMS);
    await storage.uploadData(VICTIMS, 'flaky.txt', 'x');
    const calls = new Map<string, number>();
    const flaky = withStat(async (c, b, o) => {
      calls.set(b, (calls.get(b) ?? 0) + 1);
      if (b === 'flaky.txt') throw Object.assign(new Error('Server Busy'), { statusCode: 503 });
      return storage.stat(c, b, o);
    });
    const tm3 = await createTestMachine({ plugins: [listContainerContents], services: { storage: flaky } });
    try {
      const job = await run({ container_name: VICTIMS, filter: { prefix: 'flaky' }, verify_blobs: true }, tm3);
      expect(job.status).toBe('completed');
      const [batch] = await tm3.tasks(job.id, { stage: 2 });
      expect(batch).toMatchObject({ status: 'completed', attempts: 3 });
      expect(calls.get('flaky.txt')).toBe(3);
      expect((job.result as any).summary).toMatchObject({
        total_blobs_found: 1,
        successful_analyses: 0,
        failed_analyses: 1,
        success_rate: 0,
        errors_sample: [{ blob_name: 'flaky.txt', code: 'HTTP_503', message: 'Server Busy' }],
      });
    } finally {
      await tm3.close();
    }
  });

  it('completes with zeros and no stage-2 tasks on an empty container', async () => {
    const job = await run({ container_name: EMPTY });
    expect(job.status).toBe('completed');
    expect(job.stages.map((s) => [s.name, s.status, s.total])).toEqual([
      ['list_blobs', 'completed', 1],
      ['analyze_blobs', 'completed', 0],
    ]);
    expect((job.result as any).summary).toMatchObject({
      total_blobs_found: 0,
      blobs_analyzed: 0,
      success_rate: 100,
      total_size_bytes: 0,
      file_types: {},
      largest_file: null,
    });
  });

  it('fails a missing container permanently at list_blobs', async () => {
    const job = await run({ container_name: `no-such-${suffix}` });
    expect(job.status).toBe('failed');
    expect(job.error).toMatchObject({ code: 'CONTAINER_NOT_FOUND', stage: 'list_blobs' });
    expect(await tm.tasks(job.id)).toMatchObject([{ stage: 1, status: 'failed', attempts: 1 }]);
  });

  it.each([
    [{ container_name: 'x' }, 'params.container_name'],
    [{ container_name: 'ok-name', file_limit: 0 }, 'params.file_limit'],
    [{ container_name: 'ok-name', file_limit: 100_001 }, 'params.file_limit'],
    [{ container_name: 'ok-name', batch_size: 0 }, 'params.batch_size'],
    [{ container_name: 'ok-name', batch_size: 5001 }, 'params.batch_size'],
    [{ container_name: 'ok-name', filter: { extensions: ['a b'] } }, 'params.filter.extensions.0'],
    [{ container_name: 'ok-name', filter: { max_size_mb: 1, min_size_mb: 2 } }, 'params.filter.max_size_mb'],
  ])('rejects %j at submit naming %s', async (params, path) => {
    await expect(tm.submit('list_container_contents', params)).rejects.toMatchObject({
      code: 'CM_ERR_INVALID_PARAMETERS',
      issues: expect.arrayContaining([expect.objectContaining({ path })]),
    });
  });

  it('normalises parameters (trimmed name, null limit, default batch size)', async () => {
    const job = await run({ container_name: `  ${EMPTY} `, file_limit: null });
    expect(job.parameters).toEqual({ container_name: EMPTY, file_limit: null, batch_size: 500 });
  });
});
