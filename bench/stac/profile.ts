/**
 * Profile (not a test): where the time and the CPU of cataloguing small rasters from Azurite go.
 *
 *   source scripts/env.sh && node bench/stac/profile.ts [--count 300] [--pipeline] [--conc 32]
 *
 * 1. The whole per-raster path as a catalogue task runs it (listed, one GET into memory,
 *    sha2-256, GDAL from /vsimem/, validation) at several numbers in flight: rasters/s and the
 *    CPU per raster of this process.
 * 2. (unless --pipeline) Each step alone, one raster after the other, twice (the second
 *    repetition is warm): wall time, CPU of the main thread (JavaScript and synchronous GDAL
 *    calls), CPU of the whole process (GDAL's async work runs on libuv's threads) and CPU of
 *    Azurite (a separate process), all per raster. The item build is timed with GDAL building
 *    the CRS for every file (as for a raster read in place) and with the CRS reused by GeoKeys
 *    (as for a GeoTIFF read in memory).
 */
import { createHash, randomBytes } from 'node:crypto';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import gdal from 'gdal-async';
import { arg, cogBytes } from './fixtures.ts';
import {
  assertValidItems,
  buildBlobRasterItem,
  buildRasterItem,
  footprintWgs84,
  geoTiffKeys,
  outlineRing,
  rasterBands,
  rasterItemId,
  type StacItem,
} from '@coremachine/geo/stac';
import { createStorage, ensureAzurite, storageConfigFromEnv } from '../../packages/storage/src/index.ts';

const count = arg('count', 300);
const dataDir = await mkdtemp(path.join(os.tmpdir(), 'cm-prof-azurite-'));
const azurite = await ensureAzurite({ port: 10078, location: dataDir });
const storage = createStorage(storageConfigFromEnv({ CM_AZURITE_ENDPOINT: azurite.endpoint }));
const container = `prof-stac-${randomBytes(4).toString('hex')}`;
await storage.ensureContainer(container);
const names = Array.from({ length: count }, (_, i) => `tiles/${String(i).padStart(5, '0')}.tif`);
for (let i = 0; i < count; i += 32)
  await Promise.all(names.slice(i, i + 32).map((name, k) => storage.uploadData(container, name, cogBytes(i + k))));
console.log(`${count} COGs in Azurite; load average ${os.loadavg().map((v) => v.toFixed(2))}`);

/** CPU microseconds Azurite has used so far (Linux /proc), 0 when unknown. */
async function azuriteCpuUs(): Promise<number> {
  try {
    const f = (await readFile(`/proc/${azurite.pid}/stat`, 'utf8')).split(') ')[1]!.split(' ');
    return (Number(f[11]) + Number(f[12])) * 10_000;
  } catch {
    return 0;
  }
}

async function step(label: string, fn: (i: number) => unknown) {
  const a0 = await azuriteCpuUs();
  const t0 = performance.now();
  const main0 = process.threadCpuUsage();
  const proc0 = process.cpuUsage();
  for (let i = 0; i < count; i++) await fn(i);
  const wall = ((performance.now() - t0) * 1000) / count;
  const main = process.threadCpuUsage(main0);
  const proc = process.cpuUsage(proc0);
  const az = ((await azuriteCpuUs()) - a0) / count;
  const us = (v: number) => v.toFixed(0).padStart(6);
  console.log(
    `${label.padEnd(40)} wall ${us(wall)} µs   CPU: main thread ${us((main.user + main.system) / count)} µs, process ${us((proc.user + proc.system) / count)} µs, Azurite ${us(az)} µs`,
  );
}

try {
  const listing = new Map<string, { size: number; lastModified: Date }>();
  for await (const b of storage.list(container, { prefix: 'tiles/' })) listing.set(b.name, b);
  const concs = process.argv.includes('--conc') ? [arg('conc', 32)] : [1, 8, 32, 80];
  for (const conc of concs) {
    const t = performance.now();
    const cpu = process.cpuUsage();
    let next = 0;
    await Promise.all(
      Array.from({ length: conc }, async () => {
        while (next < names.length) {
          const b = names[next++]!;
          const l = listing.get(b)!;
          const item = await buildBlobRasterItem(storage, container, b, {
            collection: 'dev',
            listed: { size: l.size, lastModified: l.lastModified, selfContained: true },
          });
          assertValidItems([item!]);
        }
      }),
    );
    const ms = performance.now() - t;
    const used = process.cpuUsage(cpu);
    console.log(
      `pipeline (GET, sha256, /vsimem/ build, validate), ${String(conc).padStart(2)} in flight: ${(names.length / (ms / 1000)).toFixed(0)} rasters/s, this process CPU ${((used.user + used.system) / 1000 / names.length).toFixed(2)} ms/raster`,
    );
  }
  for (const rep of process.argv.includes('--pipeline') ? [] : [1, 2]) {
    console.log(`--- steps, repetition ${rep}`);
    const bufs: Buffer[] = [];
    await step('GET into a buffer (storage SDK)', async (i) => {
      const chunks: Buffer[] = [];
      for await (const c of await storage.readStream(container, names[i]!)) chunks.push(c as Buffer);
      bufs[i] = Buffer.concat(chunks);
    });
    await step('sha2-256', (i) => createHash('sha256').update(bufs[i]!).digest('hex'));
    await step('GeoKeys from the bytes', (i) => geoTiffKeys(bufs[i]!));
    const paths = names.map((_, i) => `/vsimem/prof-${i}.tif`);
    names.forEach((_, i) => gdal.vsimem.set(bufs[i]!, paths[i]!));
    const dss: gdal.Dataset[] = [];
    await step('gdal.openAsync /vsimem/', async (i) => (dss[i] = await gdal.openAsync(paths[i]!)));
    await step('geoTransformAsync', async (i) => dss[i]!.geoTransformAsync);
    const srss: gdal.SpatialReference[] = [];
    await step('srsAsync (GDAL builds the CRS)', async (i) => (srss[i] = (await dss[i]!.srsAsync)!));
    await step('footprint (81 points to WGS84)', (i) =>
      footprintWgs84(outlineRing(dss[i]!.geoTransform!, 256, 256), srss[i]!),
    );
    await step('raster:bands (read, statistics)', async (i) => rasterBands(dss[i]!, true));
    await step('close', (i) => dss[i]!.close());
    const items: StacItem[] = [];
    const build = (i: number, crs: boolean) =>
      buildRasterItem(
        {
          gdalPath: paths[i]!,
          href: storage.blobUrl(container, names[i]!),
          size: bufs[i]!.length,
          lastModified: new Date(0),
          ...(crs ? { crsKey: geoTiffKeys(bufs[i]!)!.crs, bandUnitsFromCrs: true } : {}),
        },
        { id: rasterItemId(container, names[i]!), collection: 'dev' },
      );
    await step('item build, CRS built per file', async (i) => build(i, false));
    await step('item build, CRS reused by GeoKeys', async (i) => (items[i] = await build(i, true)));
    await step('validation (assertValidItems)', (i) => assertValidItems([items[i]!]));
    await step('JSON.stringify of the item', (i) => JSON.stringify(items[i]));
    for (const p of paths) gdal.vsimem.release(p);
  }
} finally {
  await storage.deleteContainer(container);
  await azurite.stop();
  await rm(dataDir, { recursive: true, force: true });
}
