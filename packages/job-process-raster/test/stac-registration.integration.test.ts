import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtemp } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { ensureStacStore, getCollection, getItem, rasterItemId } from '@coremachine/geo/stac';
import { checkCog } from '@coremachine/geo/raster';
import { rasterFixtures as fx } from '@coremachine/geo/raster';
import { createStorage, storageConfigFromEnv } from '@coremachine/storage';
import { createTestMachine, type TestMachine } from '@coremachine/test-kit';
import gdal from 'gdal-async';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import processRaster from '../src/index.ts';

const storage = createStorage(storageConfigFromEnv());
const tag = randomBytes(4).toString('hex');
const stacSchema = `stac_pr_${tag}`;
let tm: TestMachine;

beforeAll(async () => {
  tm = await createTestMachine({ plugins: [processRaster], services: { storage, stac: { schema: stacSchema } } });
  await ensureStacStore(tm.pool, stacSchema);
});
afterAll(async () => {
  await tm.pool.query(`DROP SCHEMA IF EXISTS "${stacSchema}" CASCADE`);
  await tm.close();
});

describe('process_raster → STAC', () => {
  it("output 'tiles': COG tiles on the window grid, one STAC item each in a collection of the tile set", async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'cm-pr-tiles-'));
    const local = fx.demUtm(dir, 600);
    const blob = `test-stac-${tag}/tiles/dem.tif`;
    await storage.uploadFile('bronze', blob, local);
    const job = await tm.submitAndWait('process_raster', { blob_name: blob, output: 'tiles', window_size: 256 });
    expect(job.status, JSON.stringify(job.error)).toBe('completed');
    const r = job.result as any;
    expect(r.cog).toBeNull();
    // 694 x 492 pixels in 256-pixel tiles: 3 x 2.
    expect(r.tiles).toMatchObject({
      tiles_container: 'silver',
      tiles_prefix: `test-stac-${tag}/tiles/dem_tiles/`,
      tile_count: 6,
      tile_size: 256,
    });
    expect(r.tiles.tiles.map((t: { key: string }) => t.key)).toEqual([
      'r0000_c0000',
      'r0000_c0001',
      'r0000_c0002',
      'r0001_c0000',
      'r0001_c0001',
      'r0001_c0002',
    ]);
    let pixels = 0;
    for (const t of r.tiles.tiles) {
      const file = path.join(dir, `${t.key}.tif`);
      await storage.downloadToFile('silver', t.blob, file);
      expect((await checkCog(file)).errors).toEqual([]);
      const ds = gdal.open(file);
      pixels += ds.rasterSize.x * ds.rasterSize.y;
      expect(ds.bands.get(1).noDataValue).toBe(fx.DEM_NODATA);
      ds.close();
    }
    expect(pixels).toBe(694 * 492);
    const collection = await getCollection(tm.pool, stacSchema, r.tiles.collection_id);
    expect(collection).not.toBeNull();
    expect(r.tiles.stac_item_ids).toHaveLength(6);
    for (const id of r.tiles.stac_item_ids) {
      const item = await getItem(tm.pool, stacSchema, r.tiles.collection_id, id);
      expect(item?.assets['data']?.href ?? Object.values(item!.assets)[0]!.href).toMatch(
        /dem_tiles\/r000\d_c000\d\.tif$/,
      );
    }
    for (const t of r.tiles.tiles) await storage.delete('silver', t.blob);
    await storage.delete('bronze', blob);
  }, 60_000);

  it('registers the COG it writes as an item of the cogs collection, once however often it runs', async () => {
    const local = fx.rgb3857(await mkdtemp(path.join(os.tmpdir(), 'cm-pr-stac-')));
    const blob = `test-stac-${tag}/${path.basename(local)}`;
    await storage.uploadFile('bronze', blob, local);
    const job = await tm.submitAndWait('process_raster', { blob_name: blob });
    expect(job.status).toBe('completed');
    const [task] = await tm.tasks(job.id, { stage: 3 });
    const out = task!.output as { cog_container: string; cog_blob: string; stac_item_id: string };
    expect(out.stac_item_id).toBe(rasterItemId(out.cog_container, out.cog_blob));
    const item = await getItem(tm.pool, stacSchema, 'cogs', out.stac_item_id);
    expect(item!.assets.data).toMatchObject({
      href: storage.blobUrl(out.cog_container, out.cog_blob),
      type: 'image/tiff; application=geotiff; profile=cloud-optimized',
    });
    expect(item!.properties['proj:code']).toBe('EPSG:4326');
    await tm.submitAndWait('process_raster', { blob_name: blob, compression: 'deflate' });
    const { rows } = await tm.pool.query(
      `SELECT count(*)::int AS n FROM "${stacSchema}".items WHERE collection = 'cogs'`,
    );
    expect(rows[0].n).toBe(1);
  });

  it("keeps a land cover's colour table (in the COG) and class names (its .aux.xml) from a PAM sidecar, and lists the classes in the item", async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'cm-pr-classes-'));
    const local = path.join(dir, 'landcover.tif');
    // Classes 1..3 in stripes, no colour table or names in the TIFF itself: both are in the sidecar.
    execFileSync('gdal_create', [
      '-q',
      '-of',
      'GTiff',
      '-outsize',
      '90',
      '60',
      '-bands',
      '1',
      '-ot',
      'Byte',
      '-burn',
      '1',
      '-a_srs',
      'EPSG:32633',
      '-a_ullr',
      '300000',
      '5000600',
      '300900',
      '5000000',
      local,
    ]);
    const ds = gdal.open(local, 'r+');
    const stripes = new Uint8Array(90 * 60).map((_, i) => 1 + Math.floor((i % 90) / 30));
    ds.bands.get(1).pixels.write(0, 0, 90, 60, stripes);
    ds.close();
    const sidecar = `<PAMDataset><PAMRasterBand band="1">
  <CategoryNames><Category></Category><Category>Water</Category><Category>Forest</Category><Category>Urban area</Category></CategoryNames>
  <ColorInterp>Palette</ColorInterp>
  <ColorTable><Entry c1="0" c2="0" c3="0" c4="255"/><Entry c1="0" c2="0" c3="255" c4="255"/><Entry c1="0" c2="128" c3="0" c4="255"/><Entry c1="200" c2="0" c3="0" c4="255"/></ColorTable>
</PAMRasterBand></PAMDataset>`;
    const blob = `test-stac-${tag}/classes/landcover.tif`;
    await storage.uploadFile('bronze', blob, local);
    await storage.uploadData('bronze', `${blob}.aux.xml`, sidecar);

    const job = await tm.submitAndWait('process_raster', { blob_name: blob });
    expect(job.status).toBe('completed');
    const [task] = await tm.tasks(job.id, { stage: 3 });
    const out = task!.output as {
      cog_container: string;
      cog_blob: string;
      stac_item_id: string;
      sidecars: string[];
      raster_type: string;
    };
    expect(out.sidecars).toEqual([`${out.cog_blob}.aux.xml`]);

    // The COG as a client gets it: the file and its sidecar.
    const cogFile = path.join(dir, 'landcover_cog.tif');
    await storage.downloadToFile(out.cog_container, out.cog_blob, cogFile);
    await storage.downloadToFile(out.cog_container, out.sidecars[0]!, `${cogFile}.aux.xml`);
    const cog = gdal.open(cogFile);
    const band = cog.bands.get(1);
    band.getMetadata(); // GDAL's GeoTIFF driver reads the .aux.xml on the first metadata read
    expect(band.categoryNames.slice(0, 4)).toEqual(['', 'Water', 'Forest', 'Urban area']);
    expect(band.colorTable?.get(2)).toMatchObject({ c1: 0, c2: 128, c3: 0 });
    expect(band.colorTable?.get(3)).toMatchObject({ c1: 200, c2: 0, c3: 0 });
    cog.close();
    // The colour table is inside the COG itself, not only in the sidecar.
    const bare = path.join(dir, 'bare.tif');
    await storage.downloadToFile(out.cog_container, out.cog_blob, bare);
    const inside = gdal.open(bare);
    expect(inside.bands.get(1).colorTable?.get(1)).toMatchObject({ c1: 0, c2: 0, c3: 255 });
    inside.close();

    const item = await getItem(tm.pool, stacSchema, 'cogs', out.stac_item_id);
    expect(item!.stac_extensions).toContain('https://stac-extensions.github.io/classification/v1.1.0/schema.json');
    const [rb] = item!.assets.data!['raster:bands'] as Array<{ 'classification:classes': unknown }>;
    expect(rb!['classification:classes']).toEqual([
      { value: 1, description: 'Water', name: 'water', color_hint: '0000FF' },
      { value: 2, description: 'Forest', name: 'forest', color_hint: '008000' },
      { value: 3, description: 'Urban area', name: 'urban-area', color_hint: 'C80000' },
    ]);
  });
});
