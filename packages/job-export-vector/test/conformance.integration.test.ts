import { randomBytes } from 'node:crypto';
import { createPool } from '@coremachine/core-machine';
import { ensureStacStore } from '@coremachine/geo/stac';
import { createStorage, storageConfigFromEnv } from '@coremachine/storage';
import { DATABASE_URL, describeJobPlugin } from '@coremachine/test-kit';
import job from '../src/index.ts';

const storage = createStorage(storageConfigFromEnv());
const tag = randomBytes(4).toString('hex');
const CONTAINER = `xvconf-${tag}`;
const DATA = `xvconf_${tag}`;
const STAC = `xvconf_stac_${tag}`;

async function sql(text: string) {
  const pool = createPool(DATABASE_URL, 1);
  try {
    await pool.query(text);
  } finally {
    await pool.end();
  }
}

const base = { schema: DATA, container_name: CONTAINER };

describeJobPlugin(job, {
  packageName: '@coremachine/job-export-vector',
  setup: async () => {
    await storage.ensureContainer(CONTAINER);
    const pool = createPool(DATABASE_URL, 1);
    try {
      await ensureStacStore(pool, STAC);
    } finally {
      await pool.end();
    }
    await sql(`CREATE SCHEMA "${DATA}";
      CREATE TABLE "${DATA}".parks (fid bigint PRIMARY KEY, name text, geom geometry(Point, 4326) NOT NULL);
      INSERT INTO "${DATA}".parks VALUES (1, 'a', ST_SetSRID(ST_MakePoint(2.35, 48.85), 4326)), (2, 'b', ST_SetSRID(ST_MakePoint(2.29, 48.86), 4326));
      CREATE TABLE "${DATA}".no_key (name text, geom geometry(Point, 4326))`);
  },
  teardown: async () => {
    await sql(`DROP SCHEMA IF EXISTS "${DATA}" CASCADE; DROP SCHEMA IF EXISTS "${STAC}" CASCADE`);
    await storage.deleteContainer(CONTAINER).catch(() => false);
  },
  machine: { services: { vector: { schemas: [DATA] }, stac: { schema: STAC } } },
  timeoutMs: 60_000,
  sample: {
    params: { ...base, table_name: 'parks', format: 'fgb' },
    check: (j) => {
      const r = j.result as { rows: number; chunks: number };
      return r.rows === 2 && r.chunks === 1 ? [] : [`expected 2 rows in 1 chunk: ${JSON.stringify(r)}`];
    },
  },
  invalid: [
    { name: 'a missing table_name', params: { ...base, format: 'gpkg' }, field: 'params.table_name' },
    { name: 'an unknown format', params: { ...base, table_name: 'parks', format: 'shp' }, field: 'params.format' },
    {
      name: 'a bbox with south above north',
      params: { ...base, table_name: 'parks', format: 'gpkg', bbox: [0, 10, 5, -10] },
      field: 'params.bbox',
    },
    {
      name: 'a where column that is no identifier',
      params: { ...base, table_name: 'parks', format: 'gpkg', where: [{ column: 'a;b', op: '=', value: 1 }] },
      field: 'params.where.0.column',
    },
    { name: 'an unknown key', params: { ...base, table_name: 'parks', format: 'gpkg', sql: 'x' }, field: 'params.sql' },
  ],
  missingInputs: [
    {
      name: 'missing table',
      params: { ...base, table_name: 'nowhere', format: 'gpkg' },
      code: 'TABLE_NOT_FOUND',
      stage: 'plan',
    },
    {
      name: 'table without a primary key',
      params: { ...base, table_name: 'no_key', format: 'gpkg' },
      code: 'TABLE_NOT_FOUND',
      stage: 'plan',
    },
    {
      name: 'a schema outside the allow-list',
      params: { ...base, schema: 'public', table_name: 'parks', format: 'gpkg' },
      code: 'SCHEMA_NOT_ALLOWED',
      stage: 'plan',
    },
  ],
  watch: { containers: [CONTAINER], schemas: [DATA] },
});
