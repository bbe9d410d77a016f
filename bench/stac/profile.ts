/**
 * Profile (not a test): time per step of cataloguing one batch of small rasters from Azurite.
 *
 *   source scripts/env.sh && node bench/stac/profile.ts [--count 200] [--n 50]
 */
import { randomBytes, createHash } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import gdal from 'gdal-async';
import { arg, cogBytes } from './fixtures.ts';
import {
  assertValidItems,
  buildBlobRasterItem,
  buildRasterItem,
  multihashSha256,
  rasterItemId,
  type StacItem,
} from '@coremachine/geo/stac';
import { useStorageForGdal } from '../../packages/geo/src/gdal/storage.ts';
import { createStorage, ensureAzurite, storageConfigFromEnv, vsiazPath } from '../../packages/storage/src/index.ts';

const count = arg('count', 200);
const n = arg('n', 50);

const dataDir = await mkdtemp(path.join(os.tmpdir(), 'cm-prof-azurite-'));
const azurite = await ensureAzurite({ port: 10078, location: dataDir });
const storage = createStorage(storageConfigFromEnv({ CM_AZURITE_ENDPOINT: azurite.endpoint }));
const container = `prof-stac-${randomBytes(4).toString('hex')}`;
await storage.ensureContainer(container);
const names = Array.from({ length: count }, (_, i) => `tiles/${String(i).padStart(5, '0')}.tif`);
for (let i = 0; i < count; i += 32)
  await Promise.all(names.slice(i, i + 32).map((name, k) => storage.uploadData(container, name, cogBytes(i + k))));
useStorageForGdal(storage.config);
const blobs = names.slice(0, n);

async function timed(label: string, fn: (b: string, i: number) => Promise<unknown>, conc = 1) {
  const t = performance.now();
  let next = 0;
  await Promise.all(
    Array.from({ length: conc }, async () => {
      while (next < blobs.length) {
        const i = next++;
        await fn(blobs[i]!, i);
      }
    }),
  );
  const ms = performance.now() - t;
  console.log(
    `${label.padEnd(48)} conc ${String(conc).padStart(2)}: ${(ms / blobs.length).toFixed(2).padStart(8)} ms/raster  (${(blobs.length / (ms / 1000)).toFixed(0)} /s)`,
  );
}

const only = process.argv.includes('--pipeline');
try {
  // The whole per-raster path as the catalogue task runs it (listed, in memory), at several concurrencies.
  const listing = new Map<string, { size: number; lastModified: Date }>();
  for await (const b of storage.list(container, { prefix: 'tiles/' })) listing.set(b.name, b);
  for (const conc of process.argv.includes('--conc')
    ? [Number(process.argv[process.argv.indexOf('--conc') + 1])]
    : [1, 4, 8, 16, 32, 80]) {
    const all = names;
    const t = performance.now();
    const cpu = process.cpuUsage();
    let next = 0;
    const T = { build: 0, validate: 0 };
    await Promise.all(
      Array.from({ length: conc }, async () => {
        while (next < all.length) {
          const b = all[next++]!;
          const l = listing.get(b)!;
          let s = performance.now();
          const item = await buildBlobRasterItem(storage, container, b, {
            collection: 'dev',
            listed: { size: l.size, lastModified: l.lastModified, selfContained: true },
          });
          T.build += performance.now() - s;
          s = performance.now();
          assertValidItems([item!]);
          T.validate += performance.now() - s;
        }
      }),
    );
    const ms = performance.now() - t;
    const used = process.cpuUsage(cpu);
    console.log(
      `pipeline (GET, sha256, /vsimem/ build, validate) in flight ${String(conc).padStart(2)}: ${(all.length / (ms / 1000)).toFixed(0)} rasters/s; mean latency build ${(T.build / all.length).toFixed(2)} ms, validate ${(T.validate / all.length).toFixed(2)} ms; this process CPU ${((used.user + used.system) / 1000 / all.length).toFixed(2)} ms/raster`,
    );
  }
  for (const rep of only ? [] : [1, 2]) {
    console.log(`--- repetition ${rep}`);
    const t = performance.now();
    let listed = 0;
    for await (const page of storage.listPages(container, { prefix: 'tiles/' })) listed += page.length;
    console.log(`list ${listed} blobs: ${(performance.now() - t).toFixed(1)} ms`);
    await timed('stat', (b) => storage.stat(container, b));
    await timed('checksum stream', async (b) => multihashSha256(await storage.readStream(container, b)));
    await timed('download to buffer + sha256', async (b) => {
      const chunks: Buffer[] = [];
      for await (const c of await storage.readStream(container, b)) chunks.push(c as Buffer);
      createHash('sha256').update(Buffer.concat(chunks)).digest('hex');
    });
    await timed('gdal open /vsiaz/', async (b) => (await gdal.openAsync(vsiazPath(container, b))).close());
    gdal.config.set('GDAL_DISABLE_READDIR_ON_OPEN', 'EMPTY_DIR');
    await timed('gdal open /vsiaz/ (no readdir)', async (b) => (await gdal.openAsync(vsiazPath(container, b))).close());
    gdal.config.set('GDAL_DISABLE_READDIR_ON_OPEN', null as unknown as string);
    const items: StacItem[] = [];
    await timed('buildRasterItem /vsiaz/', async (b) =>
      items.push(
        await buildRasterItem(
          { gdalPath: vsiazPath(container, b), href: storage.blobUrl(container, b), size: 1, lastModified: new Date() },
          { id: rasterItemId(container, b), collection: 'dev' },
        ),
      ),
    );
    await timed(
      'buildRasterItem /vsiaz/',
      async (b) =>
        buildRasterItem(
          { gdalPath: vsiazPath(container, b), href: storage.blobUrl(container, b), size: 1, lastModified: new Date() },
          { id: rasterItemId(container, b), collection: 'dev' },
        ),
      8,
    );
    const bufs = new Map<string, Buffer>();
    await timed(
      'download to buffer',
      async (b) => {
        const chunks: Buffer[] = [];
        for await (const c of await storage.readStream(container, b)) chunks.push(c as Buffer);
        bufs.set(b, Buffer.concat(chunks));
      },
      8,
    );
    await timed('buildRasterItem /vsimem/', async (b, i) => {
      const p = `/vsimem/prof-${i}.tif`;
      gdal.vsimem.set(bufs.get(b)!, p);
      try {
        return await buildRasterItem(
          { gdalPath: p, href: storage.blobUrl(container, b), size: 1, lastModified: new Date() },
          { id: rasterItemId(container, b), collection: 'dev' },
        );
      } finally {
        gdal.vsimem.release(p);
      }
    });
    await timed('validate (assertValidItems)', async (_b, i) => assertValidItems([items[i]!]));
  }
} finally {
  await storage.deleteContainer(container);
  await azurite.stop();
  await rm(dataDir, { recursive: true, force: true });
}
