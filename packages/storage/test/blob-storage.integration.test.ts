import { execFile } from 'node:child_process';
import { mkdtemp, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createStorage, gdalConfigFor, storageConfigFromEnv, vsiazPath, type BlobInfo } from '../src/index.ts';

const storage = createStorage(storageConfigFromEnv());
const container = `st-${process.pid}-${Date.now().toString(36)}`;

async function collect<T>(it: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const x of it) out.push(x);
  return out;
}

beforeAll(async () => {
  expect(await storage.ensureContainer(container)).toBe(true);
  expect(await storage.ensureContainer(container)).toBe(false);
});
afterAll(async () => {
  await storage.deleteContainer(container);
});

describe('BlobStorage against Azurite', () => {
  it('uploads with content type and metadata, stats and reads back', async () => {
    await storage.uploadData(container, 'a/b/data.json', '{"x":1}', { metadata: { source: 'test' } });
    const s = await storage.stat(container, 'a/b/data.json');
    expect(s).toMatchObject({
      exists: true,
      name: 'a/b/data.json',
      size: 7,
      contentType: 'application/json',
      metadata: { source: 'test' },
    });
    if (!s.exists) throw new Error('unreachable');
    expect(s.etag).toMatch(/^"0x[0-9A-F]+"$/);
    expect(Math.abs(s.lastModified.getTime() - Date.now())).toBeLessThan(60_000);
    const chunks: Buffer[] = [];
    for await (const c of await storage.readStream(container, 'a/b/data.json')) chunks.push(c as Buffer);
    expect(Buffer.concat(chunks).toString()).toBe('{"x":1}');
    const part: Buffer[] = [];
    for await (const c of await storage.readStream(container, 'a/b/data.json', { offset: 2, count: 3 }))
      part.push(c as Buffer);
    expect(Buffer.concat(part).toString()).toBe('x":');
  });

  it('uploads a stream and a file, downloads to a file', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'cm-storage-'));
    const payload = Buffer.alloc(5 * 1024 * 1024 + 17, 7); // > one 4 MiB block
    await storage.uploadStream(
      container,
      'stream/big.bin',
      Readable.from([payload.subarray(0, 1000), payload.subarray(1000)]),
      { contentType: 'application/x-test' },
    );
    expect(await storage.stat(container, 'stream/big.bin')).toMatchObject({
      size: payload.length,
      contentType: 'application/x-test',
    });
    await writeFile(join(dir, 'in.tif'), 'tiff-ish');
    expect(await storage.uploadFile(container, 'files/in.tif', join(dir, 'in.tif'))).toBe(8);
    expect(await storage.stat(container, 'files/in.tif')).toMatchObject({ contentType: 'image/tiff', size: 8 });
    expect(await storage.downloadToFile(container, 'stream/big.bin', join(dir, 'out.bin'))).toBe(payload.length);
    expect((await readFile(join(dir, 'out.bin'))).equals(payload)).toBe(true);
  });

  it('downloads only the version named by its ETag: a blob replaced since fails with BLOB_CHANGED', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'cm-storage-'));
    await storage.uploadData(container, 'versions/v.txt', 'first');
    const first = await storage.stat(container, 'versions/v.txt');
    if (!first.exists) throw new Error('uploaded blob missing');
    expect(await storage.downloadToFile(container, 'versions/v.txt', join(dir, 'a.txt'), { etag: first.etag })).toBe(5);
    expect(await readFile(join(dir, 'a.txt'), 'utf8')).toBe('first');
    await storage.uploadData(container, 'versions/v.txt', 'second!');
    const err = await storage
      .downloadToFile(container, 'versions/v.txt', join(dir, 'b.txt'), { etag: first.etag })
      .then(
        () => null,
        (e: unknown) => e,
      );
    expect(err).toMatchObject({ name: 'StorageError', code: 'BLOB_CHANGED' });
    expect((err as Error).message).toContain('versions/v.txt');
    const second = await storage.stat(container, 'versions/v.txt');
    if (!second.exists) throw new Error('uploaded blob missing');
    expect(second.etag).not.toBe(first.etag);
    expect(await storage.downloadToFile(container, 'versions/v.txt', join(dir, 'b.txt'), { etag: second.etag })).toBe(
      7,
    );
  });

  it('lists page by page under a prefix, in order, with metadata on request', async () => {
    const names = Array.from({ length: 23 }, (_, i) => `list/p${String(i).padStart(2, '0')}.txt`);
    await Promise.all(
      names.map((n, i) => storage.uploadData(container, n, 'x'.repeat(i), { metadata: { i: String(i) } })),
    );
    await storage.uploadData(container, 'listing-not-under-prefix.txt', 'y');
    const pages = await collect(storage.listPages(container, { prefix: 'list/', pageSize: 10 }));
    expect(pages.map((p) => p.length)).toEqual([10, 10, 3]);
    const flat: BlobInfo[] = await collect(
      storage.list(container, { prefix: 'list/', includeMetadata: true, pageSize: 7 }),
    );
    expect(flat.map((b) => b.name)).toEqual(names);
    expect(flat.map((b) => b.size)).toEqual(names.map((_, i) => i));
    expect(flat[5]!.metadata).toEqual({ i: '5' });
    expect(flat[5]!.contentType).toBe('text/plain');
    const noMeta = await collect(storage.list(container, { prefix: 'list/p0' }));
    expect(noMeta).toHaveLength(10);
    expect(noMeta[0]!.metadata).toBeUndefined();
  });

  it('reports missing blobs and containers with codes', async () => {
    expect(await storage.stat(container, 'nope.txt')).toEqual({ exists: false, name: 'nope.txt' });
    await expect(storage.stat('cm-no-such-container', 'x')).rejects.toMatchObject({ code: 'CONTAINER_NOT_FOUND' });
    await expect(collect(storage.list('cm-no-such-container'))).rejects.toMatchObject({
      code: 'CONTAINER_NOT_FOUND',
      message: expect.stringContaining('cm-no-such-container'),
    });
    await expect(storage.readStream(container, 'nope.txt')).rejects.toMatchObject({ code: 'BLOB_NOT_FOUND' });
    await expect(storage.uploadData('cm-no-such-container', 'x', 'y')).rejects.toMatchObject({
      code: 'CONTAINER_NOT_FOUND',
    });
    expect(await storage.containerExists('cm-no-such-container')).toBe(false);
    expect(await storage.containerExists(container)).toBe(true);
  });

  it('validates names before any request', async () => {
    await expect(storage.stat(container, '../escape')).rejects.toMatchObject({ code: 'STORAGE_INVALID_NAME' });
    await expect(collect(storage.list('UPPER'))).rejects.toMatchObject({ code: 'STORAGE_INVALID_NAME' });
    await expect(collect(storage.list(container, { prefix: 'a/../' }))).rejects.toMatchObject({
      code: 'STORAGE_INVALID_NAME',
    });
  });

  it('deletes', async () => {
    await storage.uploadData(container, 'del/me.txt', 'x');
    expect(await storage.delete(container, 'del/me.txt')).toBe(true);
    expect(await storage.delete(container, 'del/me.txt')).toBe(false);
    expect((await storage.stat(container, 'del/me.txt')).exists).toBe(false);
  });

  it('gives stable blob URLs without secrets', () => {
    const url = storage.blobUrl(container, 'dir/a b#1.tif');
    expect(url).toBe(`http://127.0.0.1:10000/devstoreaccount1/${container}/dir/a%20b%231.tif`);
    expect(url).not.toMatch(/sig=|AccountKey/);
  });

  it('lets GDAL read the same blob through /vsiaz/ with gdalConfigFor', async () => {
    await storage.uploadData(container, 'gdal/points.csv', 'id,x,y\n1,10.5,20.25\n2,11,21\n');
    const config = gdalConfigFor(storage.config);
    const args = [
      '-ro',
      '-al',
      '-so',
      ...Object.entries(config).flatMap(([k, v]) => ['--config', k, v]),
      vsiazPath(container, 'gdal/points.csv'),
    ];
    const { stdout } = await promisify(execFile)('ogrinfo', args);
    expect(stdout).toContain('Feature Count: 2');
  });
});
