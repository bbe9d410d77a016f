import gdal from 'gdal-async';
import { buildRasterItem, multihashSha256, validateItem, withStacLinks } from '@coremachine/geo/stac';
import { useStorageForGdal } from '@coremachine/geo';
import { createStorage, ensureAzurite, storageConfigFromEnv, vsiazPath } from '../../packages/storage/src/index.ts';
const az = await ensureAzurite();
const storage = createStorage(storageConfigFromEnv());
useStorageForGdal(storage.config);
const c = 'prof-stac-x';
await storage.ensureContainer(c);
const mem = gdal.open('mem', 'w', 'MEM', 256, 256, 1, gdal.GDT_Byte);
mem.srs = gdal.SpatialReference.fromEPSG(32631); mem.geoTransform = [400000, 10, 0, 5000000, 0, -10];
gdal.drivers.get('COG').createCopy('/vsimem/a.tif', mem, { COMPRESS: 'DEFLATE' }).close();
const buf = gdal.vsimem.release('/vsimem/a.tif');
for (let i = 0; i < 20; i++) await storage.uploadData(c, `t${i}.tif`, buf);
const T: Record<string, number> = {};
const tick = async <X>(k: string, f: () => Promise<X>) => { const t = performance.now(); const r = await f(); T[k] = (T[k] ?? 0) + performance.now() - t; return r; };
for (let i = 0; i < 20; i++) {
  const st = await tick('stat', () => storage.stat(c, `t${i}.tif`));
  const sum = await tick('checksum', async () => multihashSha256(await storage.readStream(c, `t${i}.tif`)));
  const item = await tick('build', () => buildRasterItem({ gdalPath: vsiazPath(c, `t${i}.tif`), href: storage.blobUrl(c, `t${i}.tif`), size: 1, lastModified: new Date(), checksum: sum }, { id: 'x', collection: 'dev' }));
  await tick('validate', async () => validateItem(withStacLinks(item, 'http://x/stac')));
  await tick('open only', async () => (await gdal.openAsync(vsiazPath(c, `t${i}.tif`))).close());
}
console.log(Object.fromEntries(Object.entries(T).map(([k, v]) => [k, (v / 20).toFixed(1) + ' ms'])));
await storage.deleteContainer(c); await az.stop();
