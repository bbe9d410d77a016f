import { createStorage, storageConfigFromEnv } from '@coremachine/storage';
import { createSampleTree, sdkListAll, type SdkBlob, type SampleTree } from '@coremachine/storage/testing';
import { createTestMachine, type TestMachine } from '@coremachine/test-kit';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import summarizeContainer from '../src/index.ts';

const config = storageConfigFromEnv();
const storage = createStorage(config);
const MiB = 1024 ** 2,
  GiB = 1024 ** 3;
const suffix = `${process.pid}-${Date.now().toString(36)}`;
const TREE = `sum-tree-${suffix}`;
const EMPTY = `sum-empty-${suffix}`;

// The reference: the test's own fold/extension/bucket logic over the raw SDK listing.
interface RefEntry {
  name: string;
  size: number;
  lastModified: Date;
}
function reference(blobs: SdkBlob[]): RefEntry[] {
  const out = new Map<string, RefEntry>();
  for (const b of blobs) {
    const key = /^(.*?[^/]\.gdb)\//i.exec(b.name)?.[1] ?? b.name;
    const e = out.get(key) ?? { name: key, size: 0, lastModified: b.lastModified };
    e.size += b.size;
    if (b.lastModified > e.lastModified) e.lastModified = b.lastModified;
    out.set(key, e);
  }
  return [...out.values()];
}
const extOf = (name: string) => {
  const base = name.split('/').pop()!;
  return base.lastIndexOf('.') > 0 ? base.slice(base.lastIndexOf('.')).toLowerCase() : 'no_extension';
};

let tm: TestMachine;
let tree: SampleTree;
let all: RefEntry[];

beforeAll(async () => {
  tree = await createSampleTree(config, TREE);
  await storage.ensureContainer(EMPTY);
  all = reference(await sdkListAll(config, TREE));
  tm = await createTestMachine({ plugins: [summarizeContainer] });
});
afterAll(async () => {
  await tm?.close();
  await storage.deleteContainer(TREE);
  await storage.deleteContainer(EMPTY);
});

async function summarize(params: Record<string, unknown>) {
  const job = await tm.submitAndWait('summarize_container', { container_name: TREE, ...params });
  expect(job.status, JSON.stringify(job.error)).toBe('completed');
  return job.result as {
    summary: any;
    execution_info: any;
    filter: any;
    file_limit: number | null;
    container_name: string;
  };
}

function expectSummaryOf(summary: any, entries: RefEntry[]) {
  expect(summary.total_files).toBe(entries.length);
  expect(summary.total_size_bytes).toBe(entries.reduce((s, e) => s + e.size, 0));
  const types: Record<string, number> = {};
  for (const e of entries) types[extOf(e.name)] = (types[extOf(e.name)] ?? 0) + 1;
  expect(Object.fromEntries(Object.entries(summary.file_types).map(([k, v]: [string, any]) => [k, v.count]))).toEqual(
    types,
  );
  if (entries.length) {
    const bySize = [...entries].sort((a, b) => b.size - a.size);
    expect(summary.largest_file.name).toBe(bySize[0]!.name);
    expect(summary.smallest_file.size_bytes).toBe(bySize.at(-1)!.size);
    const times = entries.map((e) => e.lastModified.getTime());
    expect(summary.date_range).toEqual({
      oldest_file: new Date(Math.min(...times)).toISOString(),
      newest_file: new Date(Math.max(...times)).toISOString(),
    });
  }
}

describe('summarize_container', () => {
  it('summarises the whole tree exactly as an independent SDK count', async () => {
    const r = await summarize({});
    expect(all).toHaveLength(19); // 22 blobs, the 4 files of roads.gdb folded into one
    expectSummaryOf(r.summary, all);
    expect(r.summary.total_size_bytes).toBe(
      15 * MiB +
        200 * MiB +
        2 * GiB +
        12 * GiB +
        3000 +
        1500 +
        4096 +
        4097 +
        1408 +
        2500 +
        1200 +
        180 +
        145 +
        900 +
        64 +
        128 +
        2048 +
        5000 +
        50,
    );
    expect(r.summary.size_distribution).toEqual({
      '0-10MB': 15,
      '10-100MB': 1,
      '100MB-1GB': 1,
      '1GB-10GB': 1,
      '10GB+': 1,
    });
    expect(r.summary.file_types['.tif']).toEqual({ count: 3, total_size_bytes: 9500, total_size_gb: 0.000009 });
    expect(r.summary.file_types['.gdb']).toEqual({ count: 1, total_size_bytes: 1408, total_size_gb: 0.000001 });
    expect(r.summary.geodatabases).toEqual({ count: 1, files_folded: 4, total_size_bytes: 1408 });
    expect(r.summary.largest_file).toMatchObject({ name: 'big/twelve-gig.img', size_bytes: 12 * GiB, size_mb: 12288 });
    expect(r.summary.smallest_file).toMatchObject({ name: 'late/new.json', size_bytes: 50 });
    expect(r.summary.total_size_gb).toBe(
      Math.round(((15 * MiB + 200 * MiB + 2 * GiB + 12 * GiB + 26_316) / GiB) * 1e6) / 1e6,
    );
    expect(r.execution_info).toMatchObject({
      blobs_listed: 22,
      files_scanned: 19,
      files_filtered: 0,
      hit_file_limit: false,
    });
    expect(r.container_name).toBe(TREE);
  });

  const cutoffNaive = () => tree.cutoff.toISOString().replace('Z', '');
  const cutoffPlus2 = () => new Date(tree.cutoff.getTime() + 2 * 3600_000).toISOString().replace('Z', '+02:00');
  const sel = {
    prefix: (p: string) => (e: RefEntry) => e.name.startsWith(p),
    ext:
      (...x: string[]) =>
      (e: RefEntry) =>
        x.includes(extOf(e.name)),
    min: (mb: number) => (e: RefEntry) => e.size >= mb * MiB,
    max: (mb: number) => (e: RefEntry) => e.size <= mb * MiB,
    after: () => (e: RefEntry) => e.lastModified > tree.cutoff,
    before: () => (e: RefEntry) => e.lastModified < tree.cutoff,
  };
  const cases: Array<[string, () => Record<string, unknown>, Array<(e: RefEntry) => boolean>, number]> = [
    ['prefix', () => ({ prefix: 'raster/' }), [sel.prefix('raster/')], 4],
    ['one extension, upper-case without dot', () => ({ extensions: ['TIF'] }), [sel.ext('.tif')], 3],
    ['two extensions', () => ({ extensions: ['.tif', 'tiff'] }), [sel.ext('.tif', '.tiff')], 5],
    ['the .gdb folder as an extension', () => ({ extensions: ['.gdb'] }), [sel.ext('.gdb')], 1],
    ['no_extension', () => ({ extensions: ['no_extension'] }), [sel.ext('no_extension')], 1],
    ['min_size_mb', () => ({ min_size_mb: 10 }), [sel.min(10)], 4],
    ['max_size_mb', () => ({ max_size_mb: 0.001 }), [sel.max(0.001)], 6],
    ['min and max', () => ({ min_size_mb: 100, max_size_mb: 10240 }), [sel.min(100), sel.max(10240)], 2],
    ['modified_after (Z)', () => ({ modified_after: tree.cutoff.toISOString() }), [sel.after()], 2],
    ['modified_before (naive = UTC)', () => ({ modified_before: cutoffNaive() }), [sel.before()], 17],
    ['modified_after (+02:00 offset)', () => ({ modified_after: cutoffPlus2() }), [sel.after()], 2],
    [
      'prefix + extension + date',
      () => ({ prefix: 'late/', extensions: ['json'], modified_after: cutoffNaive() }),
      [sel.prefix('late/'), sel.ext('.json'), sel.after()],
      1,
    ],
    [
      'extension + size + before',
      () => ({ extensions: ['tif', 'tiff', 'img'], max_size_mb: 1, modified_before: tree.cutoff.toISOString() }),
      [sel.ext('.tif', '.tiff', '.img'), sel.max(1), sel.before()],
      4,
    ],
  ];
  it.each(cases)('filter: %s', async (_label, filter, preds, expected) => {
    const want = all.filter((e) => preds.every((p) => p(e)));
    expect(want).toHaveLength(expected);
    const r = await summarize({ filter: filter() });
    expectSummaryOf(r.summary, want);
    const prefix = (filter().prefix as string | undefined) ?? '';
    const scanned = all.filter((e) => e.name.startsWith(prefix)).length;
    expect(r.execution_info.files_scanned).toBe(scanned);
    expect(r.execution_info.files_filtered).toBe(scanned - expected);
  });

  it('stops at file_limit (after filtering) and says so', async () => {
    const r = await summarize({ file_limit: 5 });
    expect(r.summary.total_files).toBe(5);
    expect(r.execution_info).toMatchObject({ files_scanned: 5, hit_file_limit: true });
    const exact = await summarize({ file_limit: 19 });
    expect(exact.summary.total_files).toBe(19);
    expect(exact.execution_info.hit_file_limit).toBe(false);
    const filtered = await summarize({ file_limit: 2, filter: { extensions: ['.tif'] } });
    expect(filtered.summary.total_files).toBe(2);
    expect(filtered.summary.file_types).toEqual({ '.tif': expect.objectContaining({ count: 2 }) });
    expect(filtered.execution_info.hit_file_limit).toBe(true);
  });

  it('records the normalised filter in the result', async () => {
    const r = await summarize({ filter: { extensions: ['TIF', '.Tiff'], modified_after: '2020-01-01' } });
    expect(r.filter).toEqual({ extensions: ['.tif', '.tiff'], modified_after: '2020-01-01T00:00:00.000Z' });
    expect(r.file_limit).toBeNull();
    expect(r.summary.total_files).toBe(5);
  });

  it('completes with zeros on an empty container', async () => {
    const job = await tm.submitAndWait('summarize_container', { container_name: EMPTY });
    expect(job.status).toBe('completed');
    expect(job.result).toMatchObject({
      summary: {
        total_files: 0,
        total_size_bytes: 0,
        total_size_gb: 0,
        largest_file: null,
        smallest_file: null,
        file_types: {},
        size_distribution: { '0-10MB': 0, '10-100MB': 0, '100MB-1GB': 0, '1GB-10GB': 0, '10GB+': 0 },
        date_range: { oldest_file: null, newest_file: null },
      },
      execution_info: { blobs_listed: 0, files_scanned: 0, files_filtered: 0, hit_file_limit: false },
    });
  });

  it('fails a missing container permanently with CONTAINER_NOT_FOUND (no retries)', async () => {
    const job = await tm.submitAndWait('summarize_container', { container_name: `no-such-${suffix}` });
    expect(job.status).toBe('failed');
    expect(job.error).toMatchObject({ code: 'CONTAINER_NOT_FOUND', stage: 'analyze_container' });
    expect(job.error!.message).toContain(`no-such-${suffix}`);
    const [task] = await tm.tasks(job.id);
    expect(task).toMatchObject({ status: 'failed', attempts: 1 });
  });

  it.each([
    [{}, 'params.container_name'],
    [{ container_name: 'Bad_Name' }, 'params.container_name'],
    [{ container_name: 'ok-name', file_limit: 0 }, 'params.file_limit'],
    [{ container_name: 'ok-name', file_limit: 2.5 }, 'params.file_limit'],
    [{ container_name: 'ok-name', filter: { min_size_mb: 5, max_size_mb: 1 } }, 'params.filter.max_size_mb'],
    [{ container_name: 'ok-name', filter: { min_size_mb: -1 } }, 'params.filter.min_size_mb'],
    [{ container_name: 'ok-name', filter: { modified_after: 'yesterday' } }, 'params.filter.modified_after'],
    [
      { container_name: 'ok-name', filter: { modified_before: '2024-02-30T00:00:00' } },
      'params.filter.modified_before',
    ],
    [{ container_name: 'ok-name', filter: { prefix: '../up' } }, 'params.filter.prefix'],
    [{ container_name: 'ok-name', filter: { extension: ['.tif'] } }, 'params.filter.extension'],
    [{ container_name: 'ok-name', limit: 3 }, 'params.limit'],
  ])('rejects %j at submit naming %s', async (params, path) => {
    await expect(tm.submit('summarize_container', params)).rejects.toMatchObject({
      code: 'CM_ERR_INVALID_PARAMETERS',
      issues: expect.arrayContaining([expect.objectContaining({ path })]),
    });
  });
});
