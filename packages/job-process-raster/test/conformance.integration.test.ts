import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { rasterFixtures as fx } from '@coremachine/geo/raster';
import { createStorage, storageConfigFromEnv } from '@coremachine/storage';
import { describeJobPlugin } from '@coremachine/test-kit';
import processRaster from '../src/index.ts';

const storage = createStorage(storageConfigFromEnv());
const prefix = `conf-process-${randomBytes(4).toString('hex')}`;
const blob = (name: string) => `${prefix}/${name}`;
let dir: string;

async function clear(container: string) {
  for await (const b of storage.list(container, { prefix: `${prefix}/` })) await storage.delete(container, b.name);
}

describeJobPlugin(processRaster, {
  packageName: '@coremachine/job-process-raster',
  setup: async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'cm-process-conf-'));
    await storage.ensureContainer('bronze');
    await storage.ensureContainer('silver');
    await storage.uploadFile('bronze', blob('dem.tif'), fx.demUtm(dir, 64));
    await storage.uploadFile('bronze', blob('notes.tif'), await fx.textAsTif(dir));
    await storage.uploadFile('bronze', blob('truncated.tif'), await fx.truncatedTiff(dir));
  },
  teardown: async () => {
    await clear('bronze');
    await clear('silver');
    await rm(dir, { recursive: true, force: true });
  },
  sample: {
    params: { blob_name: blob('dem.tif'), target_crs: 'native' },
    check: async (job) => {
      const cog = (job.result as { cog: { cog_container: string; cog_blob: string } }).cog;
      const stat = await storage.stat(cog.cog_container, cog.cog_blob);
      return cog.cog_blob === blob('dem_cog.tif') && stat.exists ? [] : [`no COG at ${JSON.stringify(cog)}`];
    },
  },
  invalid: [
    { name: 'a missing blob_name', params: {}, field: 'params.blob_name' },
    {
      name: 'a target CRS GDAL does not know',
      params: { blob_name: blob('dem.tif'), target_crs: 'EPSG:0' },
      field: 'params.target_crs',
    },
    {
      name: 'an unknown compression',
      params: { blob_name: blob('dem.tif'), compression: 'zip' },
      field: 'params.compression',
    },
    {
      name: 'a jpeg_quality of 101',
      params: { blob_name: blob('dem.tif'), jpeg_quality: 101 },
      field: 'params.jpeg_quality',
    },
    {
      name: 'an invalid output container',
      params: { blob_name: blob('dem.tif'), output_container: 'Silver!' },
      field: 'params.output_container',
    },
  ],
  missingInputs: [
    {
      name: 'missing blob',
      params: { blob_name: blob('gone.tif') },
      code: 'BLOB_NOT_FOUND',
      stage: 'validate',
      messageIncludes: blob('gone.tif'),
    },
    {
      name: 'missing container',
      params: { blob_name: 'x.tif', container_name: `conf-gone-${randomBytes(3).toString('hex')}` },
      code: 'BLOB_NOT_FOUND',
      stage: 'validate',
    },
    {
      name: 'unreadable file (truncated TIFF)',
      params: { blob_name: blob('truncated.tif') },
      code: 'FILE_UNREADABLE',
      messageIncludes: blob('truncated.tif'),
      stage: 'validate',
    },
    {
      name: 'not a raster (text named .tif)',
      params: { blob_name: blob('notes.tif') },
      code: 'NOT_A_RASTER',
      messageIncludes: blob('notes.tif'),
      stage: 'validate',
    },
    {
      name: 'a compression the data cannot take (jpeg on Float32)',
      params: { blob_name: blob('dem.tif'), target_crs: 'native', compression: 'jpeg' },
      code: 'COMPRESSION_UNSUPPORTED',
      stage: 'create_cog',
    },
  ],
  watch: { containers: [`bronze/${prefix}/`, `silver/${prefix}/`] },
});
