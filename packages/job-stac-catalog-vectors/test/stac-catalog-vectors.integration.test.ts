import { randomBytes } from 'node:crypto';
import { ensureStacStore, getItem } from '@coremachine/geo/stac';
import { createTestMachine, type TestMachine } from '@coremachine/test-kit';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import job from '../src/index.ts';

const tag = randomBytes(4).toString('hex');
const stacSchema = `stac_vec_${tag}`;
const data = `geo_${tag}`;
const data2 = `geo2_${tag}`;
let tm: TestMachine;

beforeAll(async () => {
  // data schema is published as OGC API Features in this test (featuresSchema).
  // A second schema of CM_GEO_SCHEMAS: /features serves it too (ids qualified where names clash).
  // (`vector` is declared by ingest_vector's services, not a dependency here.)
  const services = { stac: { schema: stacSchema, featuresSchema: data }, vector: { schemas: [data, data2] } };
  tm = await createTestMachine({ plugins: [job], services });
  await ensureStacStore(tm.pool, stacSchema);
  await tm.pool.query(`CREATE SCHEMA "${data}"`);
  await tm.pool.query(`CREATE TABLE "${data}".roads (id serial PRIMARY KEY, geom geometry(LineString, 32631))`);
  await tm.pool.query(`INSERT INTO "${data}".roads (geom) VALUES
    (ST_MakeLine(ST_MakePoint(500000, 5000000), ST_MakePoint(510000, 4990000))::geometry(LineString, 32631)),
    (ST_SetSRID(ST_MakeLine(ST_MakePoint(505000, 4995000), ST_MakePoint(506000, 4994000)), 32631))`);
  await tm.pool.query(`CREATE TABLE "${data}".empty (id serial, geom geometry(Point, 4326))`);
  await tm.pool.query(`CREATE SCHEMA "${data2}";
    CREATE TABLE "${data2}".lakes (id serial PRIMARY KEY, geom geometry(Point, 4326));
    INSERT INTO "${data2}".lakes (geom) VALUES (ST_SetSRID(ST_MakePoint(8.5, 47.3), 4326));
    CREATE TABLE "${data2}".roads (id serial PRIMARY KEY, geom geometry(Point, 4326));
    INSERT INTO "${data2}".roads (geom) VALUES (ST_SetSRID(ST_MakePoint(9, 47), 4326))`);
});

afterAll(async () => {
  await tm.pool.query(
    `DROP SCHEMA IF EXISTS "${data}" CASCADE; DROP SCHEMA IF EXISTS "${data2}" CASCADE; DROP SCHEMA IF EXISTS "${stacSchema}" CASCADE`,
  );
  await tm.close();
});

describe('stac_catalog_vectors', () => {
  it('catalogues a table: bbox reprojected to WGS84, counts, types, features link; a re-run updates the same item', async () => {
    const first = await tm.submitAndWait('stac_catalog_vectors', {
      schema: data,
      table_name: 'roads',
      datetime: '2024-05-01T00:00:00Z',
    });
    expect(first.status).toBe('completed');
    expect(first.result).toMatchObject({
      job_type: 'stac_catalog_vectors',
      collection_id: 'vectors',
      summary: {
        item_id: `postgis-${data}-roads`,
        inserted: true,
        updated: false,
        row_count: 2,
        geometry_types: ['LineString'],
        srid: 32631,
        datetime: '2024-05-01T00:00:00.000Z',
        features_href: '/features/collections/roads',
      },
    });
    const bbox = (first.result as { summary: { bbox: number[] } }).summary.bbox;
    // (500000, 5000000) in UTM 31N is (3°E, 45.1535°N); (510000, 4990000) about (3.127°E, 45.064°N).
    expect(bbox[0]).toBeCloseTo(3, 5);
    expect(bbox[3]).toBeCloseTo(45.153477, 5);
    expect(bbox[2]).toBeCloseTo(3.127, 2);
    expect(bbox[1]).toBeCloseTo(45.064, 2);

    const second = await tm.submitAndWait('stac_catalog_vectors', {
      schema: data,
      table_name: 'roads',
      source_file: 'bronze/roads.gpkg',
    });
    expect(second.result).toMatchObject({
      summary: { inserted: false, updated: true, datetime: '2024-05-01T00:00:00.000Z' },
    });
    const { rows } = await tm.pool.query(`SELECT count(*)::int AS n FROM "${stacSchema}".items`);
    expect(rows[0].n).toBe(1);
    const item = await getItem(tm.pool, stacSchema, 'vectors', `postgis-${data}-roads`);
    expect(item!.properties['coremachine:source_file']).toBe('bronze/roads.gpkg');
    expect(item!.assets.features!.href).toBe('/features/collections/roads');
  });

  it('links tables of every schema of CM_GEO_SCHEMAS to their /features collection (qualified id on a clash)', async () => {
    const lakes = await tm.submitAndWait('stac_catalog_vectors', { schema: data2, table_name: 'lakes' });
    expect(lakes.result).toMatchObject({ summary: { features_href: '/features/collections/lakes' } });
    const roads = await tm.submitAndWait('stac_catalog_vectors', { schema: data2, table_name: 'roads' });
    expect(roads.result).toMatchObject({ summary: { features_href: `/features/collections/${data2}.roads` } });
    const item = await getItem(tm.pool, stacSchema, 'vectors', `postgis-${data2}-roads`);
    expect(item!.assets.features!.href).toBe(`/features/collections/${data2}.roads`);
  });

  it('fails permanently with TABLE_NOT_FOUND and EMPTY_TABLE', async () => {
    const missing = await tm.submitAndWait('stac_catalog_vectors', { schema: data, table_name: 'nope' });
    expect(missing.status).toBe('failed');
    expect(missing.error).toMatchObject({ code: 'TABLE_NOT_FOUND', message: expect.stringContaining(`${data}.nope`) });
    const [task] = await tm.tasks(missing.id);
    expect(task!.attempts).toBe(1);
    const empty = await tm.submitAndWait('stac_catalog_vectors', { schema: data, table_name: 'empty' });
    expect(empty.error).toMatchObject({ code: 'EMPTY_TABLE' });
  });

  it('fails with STAC_COLLECTION_NOT_FOUND for an unknown collection', async () => {
    const job1 = await tm.submitAndWait('stac_catalog_vectors', {
      schema: data,
      table_name: 'roads',
      collection_id: 'missing',
    });
    expect(job1.error).toMatchObject({ code: 'STAC_COLLECTION_NOT_FOUND' });
  });

  it('rejects wrong parameters, naming the field', async () => {
    await expect(tm.submit('stac_catalog_vectors', {})).rejects.toThrow(/table_name/);
    await expect(tm.submit('stac_catalog_vectors', { table_name: 'x; drop table y' })).rejects.toThrow(/table_name/);
    await expect(tm.submit('stac_catalog_vectors', { table_name: 'x', schema: 'a-b' })).rejects.toThrow(/schema/);
    await expect(tm.submit('stac_catalog_vectors', { table_name: 'x', datetime: 'yesterday' })).rejects.toThrow(
      /datetime/,
    );
  });
});
