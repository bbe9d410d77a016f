import { execFile, execFileSync } from 'node:child_process';
import { promisify } from 'node:util';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createClient, type CoreMachineClient, type JobView } from '@coremachine/client';
import { createApp, parseEnv, type App } from '@coremachine/server';
import { createStorage, storageConfigFromEnv } from '@coremachine/storage';
import { dropSchemas, uniqueSchema } from '@coremachine/test-kit';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

/**
 * The whole product on one machine: files in Azurite → jobs through the typed client → PostGIS
 * and COGs → STAC → the STAC API and OGC API Features, read back by GDAL's own clients.
 */
// GDAL's clients call our server, which runs in this process: never block the event loop on them.
const gdalCli = async (cmd: string, args: string[]) =>
  (await promisify(execFile)(cmd, args, { encoding: 'utf8', timeout: 60_000 })).stdout;

describe('geospatial stack end to end through the server', () => {
  const ledger = uniqueSchema('cmgeo');
  const geo = uniqueSchema('geo');
  const stac = uniqueSchema('stac');
  const prefix = `e2e-${Date.now()}`;
  const dir = mkdtempSync(join(tmpdir(), 'cm-geo-e2e-'));
  const storage = createStorage(storageConfigFromEnv());
  let app: App;
  let cm: CoreMachineClient;

  const run = async (type: string, params: Record<string, unknown>): Promise<JobView> => {
    const { jobId } = await cm.jobs.submit.mutate({ type, params } as never);
    for (const deadline = Date.now() + 90_000; Date.now() < deadline; await new Promise((r) => setTimeout(r, 200))) {
      const job = await cm.jobs.get.query({ jobId });
      if (!['queued', 'processing'].includes(job.status)) return job;
    }
    throw new Error(`${type} did not settle`);
  };

  beforeAll(async () => {
    app = await createApp({
      env: parseEnv({
        CM_API_PORT: '0',
        CM_SCHEMA: ledger,
        CM_GEO_SCHEMAS: geo,
        CM_STAC_SCHEMA: stac,
        CM_LOG_LEVEL: 'error',
      }),
      config: { pollingIntervalSeconds: 0.5 },
    });
    cm = createClient({ url: app.url! });
  });
  afterAll(async () => {
    await app.close();
    const { default: pg } = await import('pg');
    const pool = new pg.Pool({
      connectionString: process.env['DATABASE_URL'] ?? 'postgres://postgres@127.0.0.1:5432/coremachine',
      max: 1,
    });
    await pool.query(`DROP SCHEMA IF EXISTS "${geo}" CASCADE; DROP SCHEMA IF EXISTS "${stac}" CASCADE`);
    await pool.end();
    await dropSchemas(ledger);
    rmSync(dir, { recursive: true, force: true });
  });

  it('ingest_vector → OGC API Features read by GDAL OAPIF → stac_catalog_vectors item', async () => {
    const features = Array.from({ length: 25 }, (_, i) => ({
      type: 'Feature',
      properties: { name: `parcel ${i}`, area: i * 10 },
      geometry:
        i % 2
          ? {
              type: 'Polygon',
              coordinates: [
                [
                  [i, 0],
                  [i + 0.5, 0],
                  [i + 0.5, 0.5],
                  [i, 0],
                ],
              ],
            }
          : {
              type: 'MultiPolygon',
              coordinates: [
                [
                  [
                    [i, 1],
                    [i + 0.5, 1],
                    [i + 0.5, 1.5],
                    [i, 1],
                  ],
                ],
              ],
            },
    }));
    const file = join(dir, 'parcels.geojson');
    writeFileSync(file, JSON.stringify({ type: 'FeatureCollection', features }));
    await storage.uploadFile('bronze', `${prefix}/parcels.geojson`, file);

    const ingest = await run('ingest_vector', {
      blob_name: `${prefix}/parcels.geojson`,
      table_name: 'parcels',
      schema: geo,
    });
    expect(ingest.status).toBe('completed');
    expect(ingest.result).toMatchObject({ features_written: 25 });

    const url = `OAPIF:${app.url}/features`;
    const listing = await gdalCli('ogrinfo', ['-ro', '-q', url]);
    expect(listing).toMatch(/parcels/);
    const summary = await gdalCli('ogrinfo', ['-ro', '-so', url, 'parcels']);
    expect(summary).toMatch(/Feature Count: 25/);
    expect(summary).toContain('Extent: (0.000000, 0.000000) - (24.500000, 1.500000)');
    const read = await gdalCli('ogrinfo', ['-ro', url, 'parcels', '-where', "name = 'parcel 7'"]);
    expect(read).toMatch(/area \(.*\) = 70/);
    expect(read).toMatch(/MULTIPOLYGON \(\(\(7 0,7\.5 0(\.0)?,7\.5 0\.5,7 0\)\)\)/);

    const catalogued = await run('stac_catalog_vectors', { schema: geo, table_name: 'parcels' });
    expect(catalogued.status).toBe('completed');
    const item = (await (
      await fetch(`${app.url}/stac/collections/vectors/items/postgis-${geo}-parcels`)
    ).json()) as Record<string, any>;
    expect(item.bbox.map((v: number) => Math.round(v * 1000) / 1000)).toEqual([0, 0, 24.5, 1.5]);
    expect(item.properties['postgis:row_count']).toBe(25);
    expect(item.assets.features.href).toBe(`${app.url}/features/collections/parcels`);
  });

  it('process_raster → COG in silver, registered in cogs, and GDAL STACIT opens the mosaic from /stac/search', async () => {
    const src = join(dir, 'site.tif');
    // 200×100 uint8 RGB in Web Mercator with a gradient GDAL writes itself.
    execFileSync('gdal_create', [
      '-of',
      'GTiff',
      '-outsize',
      '200',
      '100',
      '-bands',
      '3',
      '-ot',
      'Byte',
      '-burn',
      '60',
      '-burn',
      '120',
      '-burn',
      '180',
      '-a_srs',
      'EPSG:3857',
      '-a_ullr',
      '1000000',
      '2000000',
      '1200000',
      '1900000',
      src,
    ]);
    await storage.uploadFile('bronze', `${prefix}/site.tif`, src);
    const job = await run('process_raster', { blob_name: `${prefix}/site.tif` });
    expect(job.status).toBe('completed');
    const cog =
      (job.result as { cog: { cog_blob: string; cog_container: string; stac_item_id?: string } }).cog ??
      (job.result as never);
    expect(cog.cog_container).toBe('silver');
    expect(cog.cog_blob).toBe(`${prefix}/site_cog.tif`);
    expect((await storage.stat('silver', `${prefix}/site_cog.tif`)).exists).toBe(true);

    const search = (await (await fetch(`${app.url}/stac/search?collections=cogs&limit=100`)).json()) as {
      features: Array<{ id: string; assets: Record<string, { href: string; type: string }> }>;
    };
    const item = search.features.find((f) =>
      Object.values(f.assets).some((a) => a.href.endsWith(`${prefix}/site_cog.tif`)),
    );
    expect(item).toBeDefined();
    const asset = Object.values(item!.assets).find((a) => a.href.endsWith('site_cog.tif'))!;
    expect(asset.type).toBe('image/tiff; application=geotiff; profile=cloud-optimized');
    expect(asset.href).not.toMatch(/sig=|\?/);

    // GDAL 3.6's STACIT reads `proj:epsg` (projection v1.1); the API renders it on request.
    const info = await gdalCli('gdalinfo', [`STACIT:"${app.url}/stac/search?collections=cogs&projection=v1.1"`]);
    // STACIT builds a VRT mosaic over the items' assets, read over plain HTTP (no SAS).
    expect(info).toContain('Driver: VRT/Virtual Raster');
    expect(info).toContain(`Files: /vsicurl/${storage.blobUrl('silver', `${prefix}/site_cog.tif`)}`);
    expect(info).toMatch(/Size is 20\d, 9\d/);
    expect(info.match(/^Band \d/gm)).toHaveLength(3);
  });
});
