import { randomBytes } from 'node:crypto';
import { createPool } from '@coremachine/core-machine';
import { ensureStacStore } from '@coremachine/geo/stac';
import { DATABASE_URL, describeJobPlugin } from '@coremachine/test-kit';
import job from '../src/index.ts';

const tag = randomBytes(4).toString('hex');
const STAC_SCHEMA = `stac_vconf_${tag}`;
const DATA = `geo_vconf_${tag}`;

async function sql(text: string) {
  const pool = createPool(DATABASE_URL, 1);
  try {
    await pool.query(text);
  } finally {
    await pool.end();
  }
}

describeJobPlugin(job, {
  packageName: '@coremachine/job-stac-catalog-vectors',
  setup: async () => {
    const pool = createPool(DATABASE_URL, 1);
    try {
      await ensureStacStore(pool, STAC_SCHEMA);
    } finally {
      await pool.end();
    }
    await sql(`CREATE SCHEMA "${DATA}";
      CREATE TABLE "${DATA}".parks (id serial PRIMARY KEY, geom geometry(Point, 4326));
      INSERT INTO "${DATA}".parks (geom) VALUES (ST_SetSRID(ST_MakePoint(2.35, 48.85), 4326)), (ST_SetSRID(ST_MakePoint(2.29, 48.86), 4326));
      CREATE TABLE "${DATA}".empty (id serial PRIMARY KEY, geom geometry(Point, 4326));
      CREATE TABLE "${DATA}".no_geom (id serial PRIMARY KEY, name text)`);
  },
  teardown: () => sql(`DROP SCHEMA IF EXISTS "${DATA}" CASCADE; DROP SCHEMA IF EXISTS "${STAC_SCHEMA}" CASCADE`),
  machine: { services: { stac: { schema: STAC_SCHEMA, featuresSchema: DATA } } },
  sample: {
    params: { schema: DATA, table_name: 'parks', datetime: '2024-05-01T00:00:00Z' },
    check: (j) => {
      const s = (j.result as { summary: { row_count: number; srid: number } }).summary;
      return s.row_count === 2 && s.srid === 4326 ? [] : [`expected 2 rows in EPSG:4326: ${JSON.stringify(s)}`];
    },
  },
  invalid: [
    { name: 'a missing table_name', params: { schema: DATA }, field: 'params.table_name' },
    {
      name: 'a table name with a quote',
      params: { schema: DATA, table_name: 'x"; DROP TABLE y; --' },
      field: 'params.table_name',
    },
    {
      name: 'a schema name that is no identifier',
      params: { schema: '1geo', table_name: 'parks' },
      field: 'params.schema',
    },
    {
      name: 'a datetime without offset',
      params: { schema: DATA, table_name: 'parks', datetime: '2024-05-01' },
      field: 'params.datetime',
    },
    { name: 'an unknown key', params: { schema: DATA, table_name: 'parks', table: 'parks' }, field: 'params.table' },
  ],
  missingInputs: [
    {
      name: 'missing table',
      params: { schema: DATA, table_name: 'nowhere' },
      code: 'TABLE_NOT_FOUND',
      stage: 'catalog_table',
    },
    {
      name: 'table without geometry column',
      params: { schema: DATA, table_name: 'no_geom' },
      code: 'NO_GEOMETRY_COLUMN',
      stage: 'catalog_table',
    },
    { name: 'empty table', params: { schema: DATA, table_name: 'empty' }, code: 'EMPTY_TABLE', stage: 'catalog_table' },
    {
      name: 'missing collection',
      params: { schema: DATA, table_name: 'parks', collection_id: 'nope' },
      code: 'STAC_COLLECTION_NOT_FOUND',
      stage: 'catalog_table',
    },
  ],
  watch: { tables: [`${STAC_SCHEMA}.items`], schemas: [DATA] },
});
