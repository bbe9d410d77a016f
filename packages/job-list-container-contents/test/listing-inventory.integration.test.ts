import { createStorage, storageConfigFromEnv, type BlobStorage } from '@coremachine/storage';
import { sdkContainer } from '@coremachine/storage/testing';
import { createTestMachine, type TestMachine } from '@coremachine/test-kit';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import listContainerContents, { INVENTORY_TABLE } from '../src/index.ts';
import { splitListing } from '../src/split-listing.ts';

const config = storageConfigFromEnv();
const storage = createStorage(config);
const suffix = `${process.pid}-${Date.now().toString(36)}`;
const GEN = `lst-gen-${suffix}`;
const DEEP = `lst-deep-${suffix}`;

/**
 * A generated tree: blobs at the top level sorting before, between and after the virtual
 * directories (`a-b.txt` < `a.txt` < `a/` < `a0.txt`), nested folders, an empty blob, metadata
 * (quotes, a backslash, unicode), index tags, several content types, a name with spaces and
 * non-ASCII letters.
 */
const TREE: Array<{
  name: string;
  body: string;
  type?: string;
  meta?: Record<string, string>;
  tags?: Record<string, string>;
}> = [
  { name: 'a&b<c>.txt', body: 'xml', meta: { note: 'a & b <c> "d"' }, tags: { kind: 'x+y' } },
  { name: 'a-b.txt', body: 'ab' },
  { name: 'a.txt', body: 'a', meta: { note: 'say "hi" \\ there' } },
  { name: 'a/1.tif', body: 'x'.repeat(300), type: 'image/tiff', tags: { project: 'alpha', stage: 'raw' } },
  { name: 'a/2.TIF', body: 'y'.repeat(17), type: 'image/tiff', meta: { source: 'survey', epsg: '32633' } },
  { name: 'a/sub/deeper/3.json', body: '{}', type: 'application/json' },
  { name: 'a0.txt', body: 'zero' },
  { name: 'b/empty.bin', body: '', type: 'application/octet-stream', meta: { empty: 'yes' } },
  { name: 'b/c/d/deep.geojson', body: '{"type":"FeatureCollection"}', type: 'application/geo+json' },
  { name: 'dir b/naïve file.txt', body: 'unicode', meta: { langue: 'français' }, tags: { kind: 'doc' } },
  ...Array.from({ length: 12 }, (_, i) => ({ name: `m/part-${String(i).padStart(2, '0')}`, body: `part ${i}` })),
  { name: 'top', body: 'no extension' },
  { name: 'z/last.txt', body: 'last' },
  { name: 'é/ü.tif', body: 'umlaut', type: 'image/tiff', meta: { ville: 'Zürich' } },
];

interface SdkRow {
  name: string;
  size: number;
  contentType: string | null;
  lastModified: string;
  etag: string;
  metadata: Record<string, string>;
  tags: Record<string, string>;
}

async function sdkListing(container: string, prefix?: string): Promise<SdkRow[]> {
  const out: SdkRow[] = [];
  for await (const b of sdkContainer(config, container).listBlobsFlat({
    prefix,
    includeMetadata: true,
    includeTags: true,
  }))
    out.push({
      name: b.name,
      size: b.properties.contentLength ?? 0,
      contentType: b.properties.contentType ?? null,
      lastModified: b.properties.lastModified.toISOString(),
      etag: `"${b.properties.etag.replace(/"/g, '')}"`,
      metadata: b.metadata ?? {},
      tags: b.tags ?? {},
    });
  return out;
}

/** The per-blob check: each blob's own properties and tags requests. */
async function perBlob(container: string, name: string): Promise<Omit<SdkRow, 'name'>> {
  const client = sdkContainer(config, container).getBlobClient(name);
  const p = await client.getProperties();
  const t = await client.getTags();
  return {
    size: p.contentLength ?? 0,
    contentType: p.contentType ?? null,
    lastModified: p.lastModified!.toISOString(),
    etag: `"${p.etag!.replace(/"/g, '')}"`,
    metadata: p.metadata ?? {},
    tags: t.tags,
  };
}

const extOf = (name: string) => {
  const base = name.split('/').pop()!;
  return base.lastIndexOf('.') > 0 ? base.slice(base.lastIndexOf('.')).toLowerCase() : 'no_extension';
};

let tm: TestMachine;
let sdk: SdkRow[];
const statCalls: string[] = [];
const jobIds: string[] = [];

/** The real client, counting per-blob property requests (the listing path must make none). */
const counting: BlobStorage = new Proxy(storage, {
  get: (target, prop) => {
    if (prop === 'stat')
      return (c: string, b: string, o?: { signal?: AbortSignal }) => {
        statCalls.push(b);
        return target.stat(c, b, o);
      };
    const v = Reflect.get(target, prop, target);
    return typeof v === 'function' ? v.bind(target) : v;
  },
});

beforeAll(async () => {
  const c = sdkContainer(config, GEN);
  await c.createIfNotExists();
  await Promise.all(
    TREE.map((b) =>
      c.getBlockBlobClient(b.name).uploadData(Buffer.from(b.body), {
        blobHTTPHeaders: { blobContentType: b.type ?? 'text/plain' },
        metadata: b.meta,
        tags: b.tags,
      }),
    ),
  );
  const d = sdkContainer(config, DEEP);
  await d.createIfNotExists();
  for (const n of ['root/x/1.txt', 'root/x/2.txt', 'root/y/3.txt', 'root/4.txt'])
    await d.getBlockBlobClient(n).uploadData(Buffer.from(n));
  sdk = await sdkListing(GEN);
  tm = await createTestMachine({ plugins: [listContainerContents], services: { storage: counting } });
});
afterAll(async () => {
  if (tm && jobIds.length) await tm.pool.query(`DELETE FROM ${INVENTORY_TABLE} WHERE job_id = ANY($1)`, [jobIds]);
  await tm?.close();
  for (const c of [GEN, DEEP]) await storage.deleteContainer(c);
});

async function run(params: Record<string, unknown>) {
  const job = await tm.submitAndWait(
    'list_container_contents',
    { container_name: GEN, ...params },
    { timeoutMs: 60_000 },
  );
  jobIds.push(job.id);
  return job;
}

async function rows(jobId: string) {
  const { rows: r } = await tm.pool.query(
    `SELECT ordinal, blob_name, listed_size, size_bytes, extension, content_type, last_modified, etag, metadata, tags,
            analyzed_at, error_code
     FROM ${INVENTORY_TABLE} WHERE job_id = $1 ORDER BY ordinal`,
    [jobId],
  );
  return r;
}

describe('list_container_contents from the listing', () => {
  it('records every blob from the listing pages, field by field equal to the SDK listing and to per-blob requests', async () => {
    expect(sdk.map((b) => b.name)).toEqual(TREE.map((b) => b.name).sort());
    statCalls.length = 0;
    const job = await run({ include_tags: true });
    expect(job.status, JSON.stringify(job.error)).toBe('completed');
    expect(job.stages.map((s) => [s.name, s.status, s.total])).toEqual([
      ['list_blobs', 'completed', 1],
      ['analyze_blobs', 'completed', 0],
    ]);
    expect(statCalls).toEqual([]); // nothing requested per blob
    const [list] = await tm.tasks(job.id, { stage: 1 });
    expect(list!.output).toMatchObject({ blobs_listed: TREE.length, total_count: TREE.length, prefixes_listed: 0 });

    const got = await rows(job.id);
    expect(got.map((r) => r.blob_name)).toEqual(sdk.map((b) => b.name));
    for (const [i, b] of sdk.entries()) {
      const want = {
        ordinal: i,
        blob_name: b.name,
        listed_size: b.size,
        size_bytes: b.size,
        extension: extOf(b.name),
        content_type: b.contentType,
        last_modified: b.lastModified,
        etag: b.etag,
        metadata: b.metadata,
        tags: b.tags,
        error_code: null,
      };
      const row = { ...got[i], last_modified: got[i].last_modified.toISOString() };
      expect(row, b.name).toMatchObject(want);
      expect(row.analyzed_at).toBeInstanceOf(Date);
      // The same figures as the blob's own properties and tags requests.
      expect(await perBlob(GEN, b.name), b.name).toEqual({
        size: row.size_bytes,
        contentType: row.content_type,
        lastModified: row.last_modified,
        etag: row.etag,
        metadata: row.metadata,
        tags: row.tags,
      });
    }
    const byName = new Map(got.map((r) => [r.blob_name as string, r]));
    expect(byName.get('b/empty.bin')).toMatchObject({ size_bytes: 0, metadata: { empty: 'yes' } });
    expect(byName.get('a/1.tif')!.tags).toEqual({ project: 'alpha', stage: 'raw' });
    expect(byName.get('a.txt')!.metadata).toEqual({ note: 'say "hi" \\ there' });
    expect(byName.get('a&b<c>.txt')).toMatchObject({ metadata: { note: 'a & b <c> "d"' }, tags: { kind: 'x+y' } });
    expect(byName.get('é/ü.tif')).toMatchObject({
      extension: '.tif',
      content_type: 'image/tiff',
      metadata: { ville: 'Zürich' },
    });
    expect(byName.get('dir b/naïve file.txt')).toMatchObject({
      metadata: { langue: 'français' },
      tags: { kind: 'doc' },
    });

    const total = sdk.reduce((s, b) => s + b.size, 0);
    expect((job.result as any).summary).toMatchObject({
      total_blobs_found: TREE.length,
      blobs_analyzed: TREE.length,
      successful_analyses: TREE.length,
      failed_analyses: 0,
      total_size_bytes: total,
      largest_file: { name: 'a/1.tif', size_bytes: 300 },
    });
    expect((job.result as any).listing).toMatchObject({ total_count: TREE.length, batch_count: 0 });
  });

  it('split_by_directory records the very same rows, one listing per top-level directory', async () => {
    const flat = await run({ include_tags: true });
    statCalls.length = 0;
    const split = await run({ include_tags: true, split_by_directory: true });
    expect(split.status).toBe('completed');
    expect(statCalls).toEqual([]);
    const [list] = await tm.tasks(split.id, { stage: 1 });
    // Top level: a/, b/, dir b/, m/, z/, é/ each listed on its own.
    expect(list!.output).toMatchObject({ total_count: TREE.length, prefixes_listed: 6 });
    const strip = (r: Record<string, unknown>[]) => r.map(({ analyzed_at: _a, ...rest }) => rest);
    const want = strip(await rows(flat.id));
    expect(want).toHaveLength(TREE.length);
    expect(strip(await rows(split.id))).toEqual(want);
  });

  it('records no tags unless asked, and keeps the listing order under a prefix', async () => {
    const job = await run({ filter: { prefix: 'a/' } });
    const got = await rows(job.id);
    expect(got.map((r) => r.blob_name)).toEqual(['a/1.tif', 'a/2.TIF', 'a/sub/deeper/3.json']);
    expect(got.map((r) => r.tags)).toEqual([null, null, null]);
    expect(got[1]!.metadata).toEqual({ source: 'survey', epsg: '32633' });
  });

  it('stops all listings at file_limit, counted after the filter, across directories', async () => {
    const job = await run({ file_limit: 4, filter: { extensions: ['txt', 'tif'] }, split_by_directory: true });
    expect(job.status).toBe('completed');
    const want = sdk.filter((b) => ['.txt', '.tif'].includes(extOf(b.name))).slice(0, 4);
    expect((await rows(job.id)).map((r) => r.blob_name)).toEqual(want.map((b) => b.name));
    expect((job.result as any).listing).toMatchObject({ total_count: 4, hit_file_limit: true });
  });

  it('records a blob deleted between its listing page and the COPY as the listing returned it', async () => {
    // `a0.txt` is deleted for real once its page has been listed, before the page is recorded.
    const before = sdk.find((b) => b.name === 'a0.txt')!;
    const deleting: BlobStorage = new Proxy(storage, {
      get: (target, prop) => {
        if (prop === 'listPagesStreamed')
          return async function* (c: string, o?: Parameters<BlobStorage['listPagesStreamed']>[1]) {
            for await (const page of target.listPagesStreamed(c, o)) {
              if (page.some((b) => b.name === 'a0.txt')) await target.delete(c, 'a0.txt');
              yield page;
            }
          };
        const v = Reflect.get(target, prop, target);
        return typeof v === 'function' ? v.bind(target) : v;
      },
    });
    const tm2 = await createTestMachine({ plugins: [listContainerContents], services: { storage: deleting } });
    try {
      const job = await tm2.submitAndWait('list_container_contents', { container_name: GEN }, { timeoutMs: 60_000 });
      jobIds.push(job.id);
      expect(job.status).toBe('completed');
      expect((await storage.stat(GEN, 'a0.txt')).exists).toBe(false);
      const got = await rows(job.id);
      expect(got.map((r) => r.blob_name)).toEqual(sdk.map((b) => b.name));
      const row = got.find((r) => r.blob_name === 'a0.txt')!;
      expect({ ...row, last_modified: row.last_modified.toISOString() }).toMatchObject({
        size_bytes: before.size,
        etag: before.etag,
        last_modified: before.lastModified,
        content_type: before.contentType,
        error_code: null,
      });
    } finally {
      await tm2.close();
      await sdkContainer(config, GEN).getBlockBlobClient('a0.txt').uploadData(Buffer.from('zero'));
      sdk = await sdkListing(GEN);
    }
  });

  it('verify_blobs reads each blob once more and reports one deleted since the listing', async () => {
    // Delete `a0.txt` for real just before its own properties request.
    const vanishing: BlobStorage = new Proxy(storage, {
      get: (target, prop) => {
        if (prop === 'stat')
          return async (c: string, b: string, o?: { signal?: AbortSignal }) => {
            if (b === 'a0.txt') await target.delete(c, b);
            return target.stat(c, b, o);
          };
        const v = Reflect.get(target, prop, target);
        return typeof v === 'function' ? v.bind(target) : v;
      },
    });
    const tm2 = await createTestMachine({ plugins: [listContainerContents], services: { storage: vanishing } });
    try {
      const job = await tm2.submitAndWait(
        'list_container_contents',
        { container_name: GEN, verify_blobs: true, batch_size: 10 },
        { timeoutMs: 60_000 },
      );
      jobIds.push(job.id);
      expect(job.status).toBe('completed');
      expect(job.stages.map((s) => [s.name, s.total, s.completed])).toEqual([
        ['list_blobs', 1, 1],
        ['analyze_blobs', Math.ceil(TREE.length / 10), Math.ceil(TREE.length / 10)],
      ]);
      expect((job.result as any).summary).toMatchObject({
        total_blobs_found: TREE.length,
        successful_analyses: TREE.length - 1,
        failed_analyses: 1,
        errors_sample: [{ blob_name: 'a0.txt', code: 'BLOB_NOT_FOUND', message: expect.stringContaining('a0.txt') }],
      });
    } finally {
      await tm2.close();
      await sdkContainer(config, GEN).getBlockBlobClient('a0.txt').uploadData(Buffer.from('zero'));
    }
  });
});

describe('splitListing', () => {
  const collect = async (
    container: string,
    o: { prefix?: string; pageSize?: number; concurrency?: number; split?: boolean },
  ) => {
    const stats = { prefixes: 0 };
    const names: string[] = [];
    const pages: number[] = [];
    for await (const page of splitListing(
      storage,
      container,
      { includeMetadata: true, includeTags: false, signal: new AbortController().signal, ...o },
      stats,
    )) {
      pages.push(page.length);
      names.push(...page.map((b) => b.name));
    }
    return { names, pages, stats };
  };

  it('gives the flat listing order with small pages and any concurrency', async () => {
    for (const [pageSize, concurrency] of [
      [1, 1],
      [2, 2],
      [3, 4],
      [5000, 8],
    ] as const) {
      const r = await collect(GEN, { pageSize, concurrency });
      expect(r.names, `pageSize ${pageSize}, concurrency ${concurrency}`).toEqual(sdk.map((b) => b.name));
      expect(Math.max(...r.pages)).toBeLessThanOrEqual(pageSize);
      expect(r.stats.prefixes).toBe(6);
    }
    const flat = await collect(GEN, { pageSize: 2, split: false });
    expect(flat.names).toEqual(sdk.map((b) => b.name));
    expect(flat.pages.every((n) => n <= 2)).toBe(true);
    expect(flat.stats.prefixes).toBe(0);
  });

  it('descends through a level holding a single directory', async () => {
    const r = await collect(DEEP, { pageSize: 2 });
    expect(r.names).toEqual(['root/4.txt', 'root/x/1.txt', 'root/x/2.txt', 'root/y/3.txt']);
    expect(r.stats.prefixes).toBe(2); // root/x/ and root/y/, under root/
  });

  it('stops the listings when the consumer stops', async () => {
    const names: string[] = [];
    for await (const page of splitListing(storage, GEN, {
      includeMetadata: false,
      includeTags: false,
      signal: new AbortController().signal,
      pageSize: 1,
    })) {
      names.push(...page.map((b) => b.name));
      if (names.length >= 3) break;
    }
    expect(names).toEqual(sdk.slice(0, 3).map((b) => b.name));
  });

  it('fails with CONTAINER_NOT_FOUND on a missing container', async () => {
    await expect(collect(`lst-gone-${suffix}`, {})).rejects.toMatchObject({ code: 'CONTAINER_NOT_FOUND' });
  });
});
