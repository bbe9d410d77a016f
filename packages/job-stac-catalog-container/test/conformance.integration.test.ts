import { randomBytes } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createPool } from '@coremachine/core-machine';
import { ensureStacStore } from '@coremachine/geo/stac';
import { createStorage, storageConfigFromEnv } from '@coremachine/storage';
import { DATABASE_URL, describeJobPlugin } from '@coremachine/test-kit';
import job from '../src/index.ts';
import { makeCog, tmp } from './fixtures.ts';

const storage = createStorage(storageConfigFromEnv());
const suffix = randomBytes(4).toString('hex');
const CONTAINER = `stac-conf-${suffix}`;
const STAC_SCHEMA = `stac_conf_${suffix}`;

async function withPool(fn: (pool: ReturnType<typeof createPool>) => Promise<unknown>) {
  const pool = createPool(DATABASE_URL, 1);
  try {
    await fn(pool);
  } finally {
    await pool.end();
  }
}

describeJobPlugin(job, {
  packageName: '@coremachine/job-stac-catalog-container',
  setup: async () => {
    const dir = tmp();
    await storage.ensureContainer(CONTAINER);
    await storage.uploadFile(CONTAINER, 'ok/a.tif', makeCog(dir, 'a.tif', { size: 64 }));
    writeFileSync(join(dir, 'bad.tif'), 'not a raster');
    await storage.uploadFile(CONTAINER, 'broken/bad.tif', join(dir, 'bad.tif'));
    await withPool((pool) => ensureStacStore(pool, STAC_SCHEMA));
  },
  teardown: async () => {
    await storage.deleteContainer(CONTAINER);
    await withPool((pool) => pool.query(`DROP SCHEMA IF EXISTS "${STAC_SCHEMA}" CASCADE`));
  },
  machine: { services: { stac: { schema: STAC_SCHEMA } } },
  sample: {
    params: { container_name: CONTAINER, prefix: 'ok/' },
    check: (j) => {
      const summary = (j.result as { summary: { inserted: number; failed: number } }).summary;
      return summary.inserted === 1 && summary.failed === 0
        ? []
        : [`expected 1 item inserted: ${JSON.stringify(summary)}`];
    },
  },
  invalid: [
    { name: 'a container name with capitals', params: { container_name: 'Bad_Name' }, field: 'params.container_name' },
    { name: 'a limit of 0', params: { container_name: CONTAINER, limit: 0 }, field: 'params.limit' },
    {
      name: 'an extension with a slash',
      params: { container_name: CONTAINER, extensions: ['a/b'] },
      field: 'params.extensions.0',
    },
    {
      name: 'a collection id with a space',
      params: { container_name: CONTAINER, collection_id: 'a b' },
      field: 'params.collection_id',
    },
    {
      name: 'a misspelt key',
      params: { container_name: CONTAINER, colection_id: 'dev' },
      field: 'params.colection_id',
    },
  ],
  missingInputs: [
    {
      name: 'missing container',
      params: { container_name: `stac-conf-gone-${suffix}` },
      code: 'CONTAINER_NOT_FOUND',
      stage: 'list_rasters',
    },
    {
      name: 'missing collection',
      params: { container_name: CONTAINER, prefix: 'ok/', collection_id: 'nope' },
      code: 'STAC_COLLECTION_NOT_FOUND',
      stage: 'list_rasters',
    },
    {
      name: 'unreadable file',
      params: { container_name: CONTAINER, prefix: 'broken/' },
      code: 'RASTER_UNREADABLE',
      messageIncludes: 'broken/bad.tif',
      stage: 'catalog_rasters',
      jobStatus: 'completed_with_errors',
    },
  ],
  watch: { containers: [CONTAINER], tables: [`${STAC_SCHEMA}.items`] },
});
