import { execFile, execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readFileSync, mkdtempSync, statSync } from 'node:fs';
import { createServer, type Server, type ServerResponse } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import {
  AZURITE_ACCOUNT,
  azuriteConnectionString,
  parseConnectionString,
  createStorage,
  ensureAzurite,
  storageConfigFromEnv,
  type AzuriteHandle,
  type BlobStorage,
} from '@coremachine/storage';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { assetRoutes, parseRange, serviceSasUrl } from './assets.ts';

const run = promisify(execFile);
const container = `assets-${randomBytes(4).toString('hex')}`;
const blob = 'dem/private cog.tif';
let azurite: AzuriteHandle;
let storage: BlobStorage;
let server: Server;
let base: string;
let cogFile: string;
/** Requests the route answered: method, Range header, status. */
const seen: Array<{ method: string; range: string | undefined; status: number; path: string; bytes: number }> = [];

/** Bytes of the body sent (writeHead's content-length is not readable back from the response). */
function bodyBytes(res: ServerResponse): number {
  const range = /^bytes (\d+)-(\d+)\//.exec(String(res.getHeader('content-range') ?? ''));
  return range ? Number(range[2]) - Number(range[1]) + 1 : 0;
}

beforeAll(async () => {
  azurite = await ensureAzurite();
  storage = createStorage(storageConfigFromEnv());
  await storage.ensureContainer(container);
  await storage.setPublicRead(container, false);
  // A 2048 x 2048 COG (256 px tiles): overviews 1024, 512, 256; value 42, 7 in the top-left tile.
  const dir = mkdtempSync(join(tmpdir(), 'cm-assets-'));
  const src = join(dir, 'src.tif');
  cogFile = join(dir, 'cog.tif');
  execFileSync('gdal_create', [
    '-q',
    '-of',
    'GTiff',
    '-outsize',
    '2048',
    '2048',
    '-bands',
    '1',
    '-ot',
    'Byte',
    '-burn',
    '42',
    '-a_srs',
    'EPSG:32631',
    '-a_ullr',
    '500000',
    '5020480',
    '520480',
    '5000000',
    src,
  ]);
  execFileSync('gdal_translate', ['-q', '-of', 'COG', '-co', 'BLOCKSIZE=256', '-co', 'COMPRESS=NONE', src, cogFile]);
  await storage.uploadFile(container, blob, cogFile);

  const signed = (protocols: 'https,http') =>
    assetRoutes({
      storage,
      sign: (c, b, expiresOn) =>
        Promise.resolve(
          serviceSasUrl({
            account: AZURITE_ACCOUNT,
            key: parseConnectionString(azuriteConnectionString()).AccountKey!,
            blobUrl: storage.blobUrl(c, b),
            container: c,
            blob: b,
            expiresOn,
            protocols,
          }),
        ),
    });
  const streamed = assetRoutes({ storage });
  const redirecting = signed('https,http');
  server = createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://placeholder');
    // /signed/stac/assets/... exercises the redirect (Azure) branch against Azurite.
    const redirect = url.pathname.startsWith('/signed/');
    if (redirect) url.pathname = url.pathname.slice('/signed'.length);
    res.on('finish', () =>
      seen.push({
        method: req.method ?? '',
        range: req.headers.range,
        status: res.statusCode,
        path: url.pathname,
        bytes: bodyBytes(res),
      }),
    );
    (redirect ? redirecting : streamed)(req, res, url).then(
      (handled) => {
        if (!handled) res.writeHead(404).end();
      },
      (err) => res.writeHead(500).end(String(err)),
    );
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  base = `http://127.0.0.1:${typeof address === 'object' && address ? address.port : 0}`;
});

afterAll(async () => {
  await new Promise((r) => server?.close(r));
  await storage?.deleteContainer(container).catch(() => {});
  await azurite?.stop();
});

const route = `/stac/assets/${container}/dem/private%20cog.tif`;
const gdalEnv = {
  ...process.env,
  GDAL_DISABLE_READDIR_ON_OPEN: 'EMPTY_DIR',
  CPL_VSIL_CURL_ALLOWED_EXTENSIONS: '.tif',
  GDAL_HTTP_MULTIRANGE: 'NO',
};

describe('asset route for a private container', () => {
  it('the blob URL itself is refused to an anonymous client', async () => {
    const direct = await fetch(storage.blobUrl(container, blob));
    expect(direct.ok).toBe(false);
    expect([403, 404]).toContain(direct.status);
  });

  it('gdalinfo /vsicurl/<route> reads the COG header and its overviews with range requests', async () => {
    seen.length = 0;
    const { stdout } = await run('gdalinfo', [`/vsicurl/${base}${route}`], { env: gdalEnv });
    expect(stdout).toContain('Size is 2048, 2048');
    expect(stdout).toMatch(/Overviews: 1024x1024, 512x512, 256x256/);
    expect(stdout).toContain('LAYOUT=COG');
    const gets = seen.filter((r) => r.method === 'GET');
    expect(gets.length).toBeGreaterThan(0);
    expect(gets.every((r) => r.range && r.status === 206)).toBe(true);
    // Only the header was read: a small part of the 5.6 MB (2048² pixels and overviews, uncompressed).
    const served = gets.reduce((a, r) => a + r.bytes, 0);
    expect(statSync(cogFile).size).toBeGreaterThan(5_000_000);
    expect(served).toBeGreaterThan(0);
    expect(served).toBeLessThan(statSync(cogFile).size / 10);
  });

  it('GDAL reads the pixels of an overview through the route, with range requests only', async () => {
    seen.length = 0;
    const { stdout } = await run(
      'gdalinfo',
      ['-json', '-stats', '-oo', 'OVERVIEW_LEVEL=2', `/vsicurl/${base}${route}`],
      {
        env: gdalEnv,
      },
    );
    const info = JSON.parse(stdout);
    expect(info.size).toEqual([256, 256]);
    expect([info.bands[0].minimum, info.bands[0].maximum]).toEqual([42, 42]);
    const served = seen.filter((r) => r.method === 'GET');
    expect(served.every((r) => r.status === 206)).toBe(true);
  });

  it('answers HEAD, single ranges (206), unsatisfiable ranges (416), ETag revalidation (304) and unknown blobs (404)', async () => {
    const bytes = readFileSync(cogFile);
    const head = await fetch(`${base}${route}`, { method: 'HEAD' });
    expect(head.status).toBe(200);
    expect(Number(head.headers.get('content-length'))).toBe(bytes.length);
    expect(head.headers.get('accept-ranges')).toBe('bytes');
    const part = await fetch(`${base}${route}`, { headers: { range: 'bytes=0-15' } });
    expect(part.status).toBe(206);
    expect(part.headers.get('content-range')).toBe(`bytes 0-15/${bytes.length}`);
    expect(Buffer.from(await part.arrayBuffer())).toEqual(bytes.subarray(0, 16));
    const tail = await fetch(`${base}${route}`, { headers: { range: 'bytes=-100' } });
    expect(Buffer.from(await tail.arrayBuffer())).toEqual(bytes.subarray(bytes.length - 100));
    expect((await fetch(`${base}${route}`, { headers: { range: `bytes=${bytes.length}-` } })).status).toBe(416);
    const etag = head.headers.get('etag')!;
    expect((await fetch(`${base}${route}`, { headers: { 'if-none-match': etag } })).status).toBe(304);
    expect((await fetch(`${base}/stac/assets/${container}/missing.tif`)).status).toBe(404);
    expect((await fetch(`${base}/stac/assets/${container}/x.tif`, { method: 'PUT' })).status).toBe(405);
  });

  it('with a signer (Azure), redirects to a short-lived read-only signed URL that GDAL follows', async () => {
    const res = await fetch(`${base}/signed${route}`, { redirect: 'manual' });
    if (res.status !== 302) throw new Error(await res.text());
    const location = new URL(res.headers.get('location')!);
    expect(location.searchParams.get('sp')).toBe('r');
    expect(location.searchParams.get('sig')).toBeTruthy();
    const ttl = Date.parse(location.searchParams.get('se')!) - Date.now();
    expect(ttl).toBeGreaterThan(200_000);
    expect(ttl).toBeLessThanOrEqual(300_000);
    const got = await fetch(location);
    expect(got.status).toBe(200);
    expect(Buffer.from(await got.arrayBuffer()).equals(readFileSync(cogFile))).toBe(true);
    const { stdout } = await run('gdalinfo', [`/vsicurl/${base}/signed${route}`], { env: gdalEnv });
    expect(stdout).toMatch(/Overviews: 1024x1024, 512x512, 256x256/);
    // A tampered signature is refused by the storage.
    location.searchParams.set('sp', 'rw');
    expect((await fetch(location)).status).toBe(403);
  });

  it('parseRange', () => {
    expect(parseRange('bytes=0-9', 100)).toEqual([0, 9]);
    expect(parseRange('bytes=90-', 100)).toEqual([90, 99]);
    expect(parseRange('bytes=-10', 100)).toEqual([90, 99]);
    expect(parseRange('bytes=50-500', 100)).toEqual([50, 99]);
    expect(parseRange('bytes=100-', 100)).toBeNull();
    expect(parseRange('bytes=0-1,5-6', 100)).toBe('ignore');
  });
});
