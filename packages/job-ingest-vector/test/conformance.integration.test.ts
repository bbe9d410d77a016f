import { randomBytes } from 'node:crypto';
import { createPool } from '@coremachine/core-machine';
import { createStorage, storageConfigFromEnv } from '@coremachine/storage';
import { DATABASE_URL, describeJobPlugin } from '@coremachine/test-kit';
import ingestVector from '../src/index.ts';

const storage = createStorage(storageConfigFromEnv());
const tag = randomBytes(4).toString('hex');
const CONTAINER = `vconf-${tag}`;
const SCHEMA = `vconf_${tag}`;

const points = {
  type: 'FeatureCollection',
  features: [
    [2.35, 48.85],
    [13.4, 52.52],
    [-0.12, 51.5],
  ].map((coordinates, i) => ({
    type: 'Feature',
    properties: { name: `p${i}` },
    geometry: { type: 'Point', coordinates },
  })),
};

const base = { container_name: CONTAINER, schema: SCHEMA };

describeJobPlugin(ingestVector, {
  packageName: '@coremachine/job-ingest-vector',
  setup: async () => {
    await storage.ensureContainer(CONTAINER);
    await storage.uploadData(CONTAINER, 'in/points.geojson', JSON.stringify(points));
    await storage.uploadData(CONTAINER, 'in/notes.geojson', 'These are field notes, not GeoJSON.\n');
  },
  teardown: async () => {
    await storage.deleteContainer(CONTAINER);
    const pool = createPool(DATABASE_URL, 1);
    try {
      await pool.query(`DROP SCHEMA IF EXISTS "${SCHEMA}" CASCADE`);
    } finally {
      await pool.end();
    }
  },
  machine: { services: { vector: { schemas: [SCHEMA] } } },
  timeoutMs: 90_000,
  sample: {
    params: { ...base, blob_name: 'in/points.geojson', table_name: 'points' },
    check: async (job, tm) => {
      const { rows } = await tm.pool.query<{ n: number }>(`SELECT count(*)::int AS n FROM "${SCHEMA}".points`);
      const written = (job.result as { features_written: number }).features_written;
      return rows[0]?.n === 3 && written === 3 ? [] : [`expected 3 rows, table has ${rows[0]?.n}, result ${written}`];
    },
  },
  invalid: [
    { name: 'a missing blob_name', params: { ...base, table_name: 'points' }, field: 'params.blob_name' },
    {
      name: 'a table name with capitals and a quote',
      params: { ...base, blob_name: 'in/points.geojson', table_name: 'Pts"x' },
      field: 'params.table_name',
    },
    {
      name: 'a blob without a known extension and no file_extension',
      params: { ...base, blob_name: 'in/points.dat', table_name: 'pts' },
      field: 'params.file_extension',
    },
    {
      name: 'a chunk_size below 1000',
      params: { ...base, blob_name: 'in/points.geojson', table_name: 'pts', chunk_size: 10 },
      field: 'params.chunk_size',
    },
    {
      name: 'lat_name without lon_name',
      params: { ...base, blob_name: 'in/points.csv', table_name: 'pts', lat_name: 'y' },
      field: 'params.lon_name',
    },
  ],
  missingInputs: [
    {
      name: 'missing blob',
      params: { ...base, blob_name: 'in/gone.geojson', table_name: 'gone' },
      code: 'BLOB_NOT_FOUND',
      messageIncludes: 'in/gone.geojson',
      stage: 'prepare',
    },
    {
      name: 'missing container',
      params: { ...base, container_name: `vconf-gone-${tag}`, blob_name: 'in/points.geojson', table_name: 'gone2' },
      code: 'BLOB_NOT_FOUND',
      stage: 'prepare',
    },
    {
      name: 'unreadable file (text named .geojson)',
      params: { ...base, blob_name: 'in/notes.geojson', table_name: 'notes' },
      code: 'SOURCE_UNREADABLE',
      messageIncludes: 'in/notes.geojson',
      stage: 'prepare',
    },
    {
      name: 'a schema outside the allow-list',
      params: { ...base, schema: 'public', blob_name: 'in/points.geojson', table_name: 'pts' },
      code: 'SCHEMA_NOT_ALLOWED',
      stage: 'prepare',
    },
  ],
  watch: { containers: [CONTAINER], schemas: [SCHEMA] },
});
