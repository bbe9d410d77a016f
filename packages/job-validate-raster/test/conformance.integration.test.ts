import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { rasterFixtures as fx } from '@coremachine/geo/raster';
import { createStorage, storageConfigFromEnv } from '@coremachine/storage';
import { describeJobPlugin } from '@coremachine/test-kit';
import validateRaster from '../src/index.ts';

const storage = createStorage(storageConfigFromEnv());
const prefix = `conf-validate-${randomBytes(4).toString('hex')}`;
const blob = (name: string) => `${prefix}/${name}`;
let dir: string;

describeJobPlugin(validateRaster, {
  packageName: '@coremachine/job-validate-raster',
  setup: async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'cm-validate-conf-'));
    await storage.ensureContainer('bronze');
    // Each fixture is uploaded as soon as it is written (some share a local file name).
    await storage.uploadFile('bronze', blob('rgb.tif'), fx.rgb3857(dir));
    await storage.uploadFile('bronze', blob('no_crs.tif'), fx.noCrs(dir));
    await storage.uploadFile('bronze', blob('notes.tif'), await fx.textAsTif(dir));
    await storage.uploadFile('bronze', blob('truncated.tif'), await fx.truncatedTiff(dir));
  },
  teardown: async () => {
    for await (const b of storage.list('bronze', { prefix: `${prefix}/` })) await storage.delete('bronze', b.name);
    await rm(dir, { recursive: true, force: true });
  },
  sample: {
    params: { blob_name: blob('rgb.tif') },
    check: (job) => {
      const type = (job.result as { validation_result: { raster_type: { detected_type: string } } }).validation_result
        .raster_type.detected_type;
      return type === 'rgb' ? [] : [`expected an rgb raster, detected ${type}`];
    },
  },
  invalid: [
    { name: 'a missing blob_name', params: {}, field: 'params.blob_name' },
    { name: 'a blob path with ..', params: { blob_name: '../etc/passwd' }, field: 'params.blob_name' },
    {
      name: 'strict_mode as a string',
      params: { blob_name: 'a.tif', strict_mode: 'yes' },
      field: 'params.strict_mode',
    },
    {
      name: 'an unknown raster_type',
      params: { blob_name: 'a.tif', raster_type: 'photo' },
      field: 'params.raster_type',
    },
    {
      name: 'a CRS GDAL does not know',
      params: { blob_name: 'a.tif', input_crs: 'EPSG:99999999' },
      field: 'params.input_crs',
    },
    { name: 'an unknown key', params: { blob_name: 'a.tif', extra: 1 }, field: 'params.extra' },
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
    },
    {
      name: 'not a raster (text named .tif)',
      params: { blob_name: blob('notes.tif') },
      code: 'NOT_A_RASTER',
      messageIncludes: blob('notes.tif'),
    },
    { name: 'raster without a CRS', params: { blob_name: blob('no_crs.tif') }, code: 'CRS_MISSING' },
  ],
  watch: { containers: [`bronze/${prefix}/`] },
});
