import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { rasterFixtures as fx } from '@coremachine/geo/raster';
import { createStorage, storageConfigFromEnv } from '@coremachine/storage';
import { describeJobPlugin } from '@coremachine/test-kit';
import collection from '../src/index.ts';
import { mosaicTile } from './fixtures.ts';

const storage = createStorage(storageConfigFromEnv());
const prefix = `conf-mosaic-${randomBytes(4).toString('hex')}`;
const blob = (name: string) => `${prefix}/${name}`;
let dir: string;

async function clear(container: string) {
  for await (const b of storage.list(container, { prefix: `${prefix}/` })) await storage.delete(container, b.name);
}

describeJobPlugin(collection, {
  packageName: '@coremachine/job-process-raster-collection',
  setup: async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'cm-mosaic-conf-'));
    await storage.ensureContainer('bronze');
    await storage.ensureContainer('silver');
    await storage.uploadFile('bronze', blob('tiles/a.tif'), mosaicTile(dir, 0, 0));
    await storage.uploadFile('bronze', blob('tiles/b.tif'), mosaicTile(dir, 1, 0));
    await storage.uploadFile('bronze', blob('two/b2.tif'), mosaicTile(dir, 1, 1, 2));
    await storage.uploadFile('bronze', blob('notes.tif'), await fx.textAsTif(dir));
  },
  teardown: async () => {
    await clear('bronze');
    await clear('silver');
    await rm(dir, { recursive: true, force: true });
  },
  sample: {
    params: { prefix: blob('tiles/'), output_blob_name: blob('mosaic_cog.tif') },
    check: async (job) => {
      const cog = (job.result as { cog: { cog_container: string; cog_blob: string } }).cog;
      const stat = await storage.stat(cog.cog_container, cog.cog_blob);
      return stat.exists ? [] : [`no COG at ${JSON.stringify(cog)}`];
    },
  },
  invalid: [
    { name: 'neither prefix nor blob_names', params: { output_blob_name: 'x.tif' }, field: 'params.prefix' },
    {
      name: 'both prefix and blob_names',
      params: { prefix: 'a/', blob_names: ['a/b.tif'], output_blob_name: 'x.tif' },
      field: 'params.prefix',
    },
    { name: 'a missing output_blob_name', params: { prefix: 'a/' }, field: 'params.output_blob_name' },
    {
      name: 'an unknown compression',
      params: { prefix: 'a/', output_blob_name: 'x.tif', compression: 'zip' },
      field: 'params.compression',
    },
    {
      name: 'a window size not a multiple of 64',
      params: { prefix: 'a/', output_blob_name: 'x.tif', window_size: 100 },
      field: 'params.window_size',
    },
  ],
  missingInputs: [
    {
      name: 'missing blob',
      params: { blob_names: [blob('tiles/a.tif'), blob('gone.tif')], output_blob_name: blob('m.tif') },
      code: 'BLOB_NOT_FOUND',
      stage: 'inspect',
      messageIncludes: blob('gone.tif'),
    },
    {
      name: 'no raster under the prefix',
      params: { prefix: blob('nothing/'), output_blob_name: blob('m.tif') },
      code: 'RASTERS_NONE',
      stage: 'inspect',
    },
    {
      name: 'not a raster (text named .tif)',
      params: { blob_names: [blob('notes.tif')], output_blob_name: blob('m.tif') },
      code: 'NOT_A_RASTER',
      stage: 'inspect',
      messageIncludes: blob('notes.tif'),
    },
    {
      name: 'inputs with different band counts',
      params: { blob_names: [blob('tiles/a.tif'), blob('two/b2.tif')], output_blob_name: blob('m.tif') },
      code: 'RASTER_BAND_COUNT_MISMATCH',
      stage: 'inspect',
      messageIncludes: blob('two/b2.tif'),
    },
  ],
  watch: { containers: [`bronze/${prefix}/`, `silver/${prefix}/`] },
});
