import { randomBytes } from 'node:crypto';
import { createStorage, storageConfigFromEnv } from '@coremachine/storage';
import { describeJobPlugin } from '@coremachine/test-kit';
import listContainerContents, { INVENTORY_SCHEMA, INVENTORY_TABLE } from '../src/index.ts';

const storage = createStorage(storageConfigFromEnv());
const suffix = randomBytes(4).toString('hex');
const CONTAINER = `lst-conf-${suffix}`;

describeJobPlugin(listContainerContents, {
  packageName: '@coremachine/job-list-container-contents',
  setup: async () => {
    await storage.ensureContainer(CONTAINER);
    for (const name of ['a/1.tif', 'a/2.tif', 'b/readme.txt']) await storage.uploadData(CONTAINER, name, name);
  },
  teardown: async ({ tm, jobIds }) => {
    if (tm && jobIds.length) await tm.pool.query(`DELETE FROM ${INVENTORY_TABLE} WHERE job_id = ANY($1)`, [jobIds]);
    await storage.deleteContainer(CONTAINER);
  },
  sample: {
    params: { container_name: CONTAINER, batch_size: 2 },
    check: async (job, tm) => {
      const { rows } = await tm.pool.query<{ n: number }>(
        `SELECT count(*)::int AS n FROM ${INVENTORY_TABLE} WHERE job_id = $1 AND analyzed_at IS NOT NULL`,
        [job.id],
      );
      return rows[0]?.n === 3 ? [] : [`expected 3 analysed inventory rows, found ${rows[0]?.n}`];
    },
  },
  invalid: [
    { name: 'a container name with capitals', params: { container_name: 'Bronze' }, field: 'params.container_name' },
    { name: 'a batch_size of 0', params: { container_name: CONTAINER, batch_size: 0 }, field: 'params.batch_size' },
    {
      name: 'a file_limit above the maximum',
      params: { container_name: CONTAINER, file_limit: 100_001 },
      field: 'params.file_limit',
    },
    {
      name: 'a filter prefix escaping the container',
      params: { container_name: CONTAINER, filter: { prefix: '../x' } },
      field: 'params.filter.prefix',
    },
  ],
  missingInputs: [
    {
      name: 'missing container',
      params: { container_name: `lst-conf-gone-${suffix}` },
      code: 'CONTAINER_NOT_FOUND',
      stage: 'list_blobs',
    },
  ],
  watch: { containers: [CONTAINER], schemas: [INVENTORY_SCHEMA] },
});
