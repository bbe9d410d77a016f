import { randomBytes } from 'node:crypto';
import { createStorage, storageConfigFromEnv } from '@coremachine/storage';
import { describeJobPlugin } from '@coremachine/test-kit';
import summarizeContainer from '../src/index.ts';

const storage = createStorage(storageConfigFromEnv());
const suffix = randomBytes(4).toString('hex');
const CONTAINER = `sum-conf-${suffix}`;

describeJobPlugin(summarizeContainer, {
  packageName: '@coremachine/job-summarize-container',
  setup: async () => {
    await storage.ensureContainer(CONTAINER);
    await storage.uploadData(CONTAINER, 'dem/a.tif', 'x'.repeat(1000));
    await storage.uploadData(CONTAINER, 'dem/b.TIF', 'x'.repeat(500));
    await storage.uploadData(CONTAINER, 'notes.txt', 'hello');
  },
  teardown: async () => {
    await storage.deleteContainer(CONTAINER);
  },
  sample: {
    params: { container_name: CONTAINER, filter: { extensions: ['tif'] } },
    check: (job) => {
      const summary = (job.result as { summary: { total_files: number; total_size_bytes: number } }).summary;
      return summary.total_files === 2 && summary.total_size_bytes === 1500
        ? []
        : [`expected 2 .tif files of 1500 bytes, got ${JSON.stringify(summary)}`];
    },
  },
  invalid: [
    { name: 'a container name with capitals', params: { container_name: 'Bad_Name' }, field: 'params.container_name' },
    { name: 'a missing container name', params: {}, field: 'params.container_name' },
    { name: 'a zero file_limit', params: { container_name: CONTAINER, file_limit: 0 }, field: 'params.file_limit' },
    {
      name: 'a negative size bound',
      params: { container_name: CONTAINER, filter: { min_size_mb: -1 } },
      field: 'params.filter.min_size_mb',
    },
    { name: 'an unknown key', params: { container_name: CONTAINER, limit: 5 }, field: 'params.limit' },
  ],
  missingInputs: [
    {
      name: 'missing container',
      params: { container_name: `sum-conf-gone-${suffix}` },
      code: 'CONTAINER_NOT_FOUND',
      stage: 'analyze_container',
    },
  ],
  watch: { containers: [CONTAINER] },
});
