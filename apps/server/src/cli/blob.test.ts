import { mkdtemp, mkdir, readFile, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createStorage, storageConfigFromEnv } from '@coremachine/storage';
import azuriteForTests from '@coremachine/storage/test-setup';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { blobCommand } from './blob.ts';

const storage = createStorage(storageConfigFromEnv());
const container = `cli-${process.pid}-${Date.now().toString(36)}`;
const linked = `${container}-links`;
let dir: string;
let releaseAzurite: () => Promise<void>;

function capture() {
  const out: string[] = [],
    err: string[] = [];
  return { out, err, io: { out: (s: string) => out.push(s), err: (s: string) => err.push(s) } };
}

beforeAll(async () => {
  // This package's vitest config has no storage globalSetup: join the shared Azurite here.
  releaseAzurite = await azuriteForTests();
  dir = await mkdtemp(join(tmpdir(), 'cm-blob-cli-'));
  await mkdir(join(dir, 'tree', 'dem', 'sub'), { recursive: true });
  await writeFile(join(dir, 'tree', 'dem', 'elev.TIF'), 'tiff-bytes');
  await writeFile(join(dir, 'tree', 'dem', 'sub', 'points.geojson'), '{"type":"FeatureCollection","features":[]}');
  await writeFile(join(dir, 'tree', 'README'), 'hello');
  await writeFile(join(dir, 'single.csv'), 'a,b\n1,2\n');
});
afterAll(async () => {
  await storage.deleteContainer(container);
  await storage.deleteContainer(linked);
  await releaseAzurite?.();
});

describe('cm blob', () => {
  it('put uploads a folder recursively with relative paths, a prefix and guessed content types', async () => {
    const c = capture();
    expect(await blobCommand(['put', container, join(dir, 'tree'), '--prefix', 'in/'], c.io)).toBe(0);
    expect(c.out[0]).toBe(`created container ${container}`);
    expect(c.out.at(-1)).toBe(`3 file(s), 57 bytes uploaded to ${container}/in/`);
    expect(await storage.stat(container, 'in/dem/elev.TIF')).toMatchObject({ size: 10, contentType: 'image/tiff' });
    expect(await storage.stat(container, 'in/dem/sub/points.geojson')).toMatchObject({
      size: 42,
      contentType: 'application/geo+json',
    });
    expect(await storage.stat(container, 'in/README')).toMatchObject({
      size: 5,
      contentType: 'application/octet-stream',
    });
  });

  it('put uploads a single file under its base name', async () => {
    const c = capture();
    expect(await blobCommand(['put', container, join(dir, 'single.csv')], c.io)).toBe(0);
    expect(await storage.stat(container, 'single.csv')).toMatchObject({ size: 8, contentType: 'text/csv' });
  });

  it('put reports symbolic links and skips them, or follows them with --follow-symlinks', async () => {
    const links = join(dir, 'links');
    await mkdir(join(links, 'real'), { recursive: true });
    await writeFile(join(links, 'real', 'a.txt'), 'aaaa');
    await writeFile(join(dir, 'outside.txt'), 'outside!');
    await symlink(join(dir, 'outside.txt'), join(links, 'file-link.txt'));
    await symlink(join(links, 'real'), join(links, 'dir-link'));
    await symlink(links, join(links, 'real', 'loop'));
    await symlink(join(dir, 'gone'), join(links, 'broken'));
    const c = capture();
    expect(await blobCommand(['put', linked, links, '--prefix', 'nolinks'], c.io)).toBe(0);
    expect(c.err).toEqual([
      `skipped broken: symbolic link to ${join(dir, 'gone')} (--follow-symlinks uploads its target)`,
      `skipped dir-link: symbolic link to ${join(links, 'real')} (--follow-symlinks uploads its target)`,
      `skipped file-link.txt: symbolic link to ${join(dir, 'outside.txt')} (--follow-symlinks uploads its target)`,
      `skipped real/loop: symbolic link to ${links} (--follow-symlinks uploads its target)`,
    ]);
    expect(c.out.at(-1)).toBe(`1 file(s), 4 bytes uploaded to ${linked}/nolinks/; 4 skipped`);

    const f = capture();
    expect(await blobCommand(['put', linked, links, '--prefix', 'follow', '--follow-symlinks'], f.io)).toBe(0);
    expect(f.err).toEqual([
      `skipped broken: broken symbolic link to ${join(dir, 'gone')}`,
      'skipped dir-link/loop: symbolic link back into a folder already uploaded',
      'skipped real/loop: symbolic link back into a folder already uploaded',
    ]);
    expect(f.out.at(-1)).toBe(`3 file(s), 16 bytes uploaded to ${linked}/follow/; 3 skipped`);
    expect(await storage.stat(linked, 'follow/file-link.txt')).toMatchObject({ size: 8 });
    expect(await storage.stat(linked, 'follow/dir-link/a.txt')).toMatchObject({ size: 4 });

    // A folder of nothing but links: nothing uploaded is an error, not a silent success.
    const only = join(dir, 'only-links');
    await mkdir(only);
    await symlink(join(dir, 'outside.txt'), join(only, 'x.txt'));
    const o = capture();
    expect(await blobCommand(['put', linked, only], o.io)).toBe(1);
    expect(o.err.at(-1)).toBe('nothing uploaded: every entry was skipped');
  });

  it('ls lists (human and JSON), optionally under a prefix', async () => {
    const c = capture();
    expect(await blobCommand(['ls', container, '--prefix', 'in/dem/'], c.io)).toBe(0);
    expect(c.out).toHaveLength(3);
    expect(c.out[0]).toMatch(/^\s+10 {2}\d{4}-\d\d-\d\dT.* {2}in\/dem\/elev\.TIF$/);
    expect(c.out[1]).toMatch(/ {2}in\/dem\/sub\/points\.geojson$/);
    expect(c.out[2]).toBe('2 blob(s), 52 bytes');
    const j = capture();
    expect(await blobCommand(['ls', container, '--json'], j.io)).toBe(0);
    const rows = JSON.parse(j.out.join('\n')) as Array<{
      name: string;
      size: number;
      content_type: string;
      etag: string;
    }>;
    expect(rows.map((r) => [r.name, r.size, r.content_type])).toEqual([
      ['in/README', 5, 'application/octet-stream'],
      ['in/dem/elev.TIF', 10, 'image/tiff'],
      ['in/dem/sub/points.geojson', 42, 'application/geo+json'],
      ['single.csv', 8, 'text/csv'],
    ]);
    expect(rows[0]!.etag).toMatch(/^"0x/);
  });

  it('get downloads a blob, creating folders', async () => {
    const c = capture();
    const target = join(dir, 'out', 'deep', 'p.geojson');
    expect(await blobCommand(['get', container, 'in/dem/sub/points.geojson', target], c.io)).toBe(0);
    expect(await readFile(target, 'utf8')).toBe('{"type":"FeatureCollection","features":[]}');
  });

  it('exits 1 with a coded message on storage errors, 2 on usage errors', async () => {
    const missing = capture();
    expect(await blobCommand(['get', container, 'nope.txt', join(dir, 'x')], missing.io)).toBe(1);
    expect(missing.err[0]).toMatch(/^BLOB_NOT_FOUND: .*nope\.txt/);
    const noContainer = capture();
    expect(await blobCommand(['ls', 'cm-cli-no-such-container'], noContainer.io)).toBe(1);
    expect(noContainer.err[0]).toMatch(/^CONTAINER_NOT_FOUND/);
    const badName = capture();
    expect(await blobCommand(['ls', 'Bad_Name'], badName.io)).toBe(1);
    expect(badName.err[0]).toMatch(/^STORAGE_INVALID_NAME/);
    const badPrefix = capture();
    expect(await blobCommand(['put', container, join(dir, 'single.csv'), '--prefix', '../up'], badPrefix.io)).toBe(1);
    expect(badPrefix.err[0]).toMatch(/STORAGE_INVALID_NAME.*\.\./);
    for (const argv of [[], ['frob'], ['ls'], ['get', container, 'x'], ['ls', container, '--bogus']]) {
      const u = capture();
      expect(await blobCommand(argv, u.io)).toBe(2);
    }
    const noFile = capture();
    expect(await blobCommand(['put', container, join(dir, 'does-not-exist')], noFile.io)).toBe(1);
    expect(noFile.err[0]).toMatch(/ENOENT/);
  });
});
