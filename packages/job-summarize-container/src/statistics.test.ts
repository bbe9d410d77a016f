import { describe, expect, it } from 'vitest';
import { foldGeodatabases, gdbFolderOf } from './entries.ts';
import { sizeBucket, SummaryAccumulator } from './statistics.ts';

const MiB = 1024 ** 2,
  GiB = 1024 ** 3;

describe('sizeBucket', () => {
  it.each([
    [0, '0-10MB'],
    [10 * MiB - 1, '0-10MB'],
    [10 * MiB, '10-100MB'],
    [100 * MiB - 1, '10-100MB'],
    [100 * MiB, '100MB-1GB'],
    [GiB - 1, '100MB-1GB'],
    [GiB, '1GB-10GB'],
    [10 * GiB - 1, '1GB-10GB'],
    [10 * GiB, '10GB+'],
    [5 * 1024 * GiB, '10GB+'],
  ])('%d bytes -> %s', (bytes, bucket) => expect(sizeBucket(bytes)).toBe(bucket));
});

describe('geodatabase folding', () => {
  it('finds the .gdb folder of a blob', () => {
    expect(gdbFolderOf('a/Roads.GDB/x.gdbtable')).toBe('a/Roads.GDB');
    expect(gdbFolderOf('roads.gdb/gdb')).toBe('roads.gdb');
    expect(gdbFolderOf('a/roads.gdb')).toBeNull();
    expect(gdbFolderOf('a/.gdb/x')).toBeNull();
    expect(gdbFolderOf('a/b/c.tif')).toBeNull();
  });
  it('folds consecutive blobs of one folder into one entry', async () => {
    const t = (s: number) => new Date(Date.UTC(2024, 0, 1, 0, 0, s));
    async function* listing() {
      yield { name: 'a.tif', size: 1, lastModified: t(1), contentType: 'image/tiff', etag: '1' };
      yield { name: 'g/x.gdb/a', size: 10, lastModified: t(5), contentType: null, etag: '2' };
      yield { name: 'g/x.gdb/b', size: 20, lastModified: t(9), contentType: null, etag: '3' };
      yield { name: 'g/x.gdb/c', size: 30, lastModified: t(2), contentType: null, etag: '4' };
      yield { name: 'g/y.gdb/a', size: 7, lastModified: t(3), contentType: null, etag: '5' };
      yield { name: 'z.txt', size: 2, lastModified: t(4), contentType: 'text/plain', etag: '6' };
    }
    let listed = 0;
    const entries = [];
    for await (const e of foldGeodatabases(listing(), () => listed++)) entries.push(e);
    expect(listed).toBe(6);
    expect(entries.map((e) => [e.name, e.size, e.fileCount, e.isGdb, e.lastModified.getUTCSeconds()])).toEqual([
      ['a.tif', 1, 1, false, 1],
      ['g/x.gdb', 60, 3, true, 9],
      ['g/y.gdb', 7, 1, true, 3],
      ['z.txt', 2, 1, false, 4],
    ]);
  });
});

describe('SummaryAccumulator', () => {
  it('accumulates counts, extremes, types, buckets and dates', () => {
    const acc = new SummaryAccumulator();
    const e = (name: string, size: number, day: number, isGdb = false) => ({
      name,
      size,
      lastModified: new Date(Date.UTC(2024, 0, day)),
      contentType: null,
      fileCount: isGdb ? 4 : 1,
      isGdb,
    });
    acc.add(e('a/x.TIF', 11 * MiB, 3));
    acc.add(e('b/y.tif', 5, 1));
    acc.add(e('c/README', 5, 9));
    acc.add(e('d/r.gdb', 2 * GiB, 2, true));
    const r = acc.result();
    expect(r.total_files).toBe(4);
    expect(r.total_size_bytes).toBe(11 * MiB + 10 + 2 * GiB);
    expect(r.largest_file).toEqual({
      name: 'd/r.gdb',
      size_bytes: 2 * GiB,
      size_mb: 2048,
      last_modified: '2024-01-02T00:00:00.000Z',
    });
    expect(r.smallest_file?.name).toBe('b/y.tif'); // first of the tie in listing order
    expect(r.file_types).toEqual({
      '.gdb': { count: 1, total_size_bytes: 2 * GiB, total_size_gb: 2 },
      '.tif': { count: 2, total_size_bytes: 11 * MiB + 5, total_size_gb: 0.010742 },
      no_extension: { count: 1, total_size_bytes: 5, total_size_gb: 0 },
    });
    expect(r.size_distribution).toEqual({ '0-10MB': 2, '10-100MB': 1, '100MB-1GB': 0, '1GB-10GB': 1, '10GB+': 0 });
    expect(r.date_range).toEqual({ oldest_file: '2024-01-01T00:00:00.000Z', newest_file: '2024-01-09T00:00:00.000Z' });
    expect(r.geodatabases).toEqual({ count: 1, files_folded: 4, total_size_bytes: 2 * GiB });
  });
  it('gives zeros and nulls when empty', () => {
    expect(new SummaryAccumulator().result()).toMatchObject({
      total_files: 0,
      total_size_bytes: 0,
      largest_file: null,
      smallest_file: null,
      file_types: {},
      date_range: { oldest_file: null, newest_file: null },
    });
  });
});
