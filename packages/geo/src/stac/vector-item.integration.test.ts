import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { testDb } from './__fixtures__/db.ts';
import { withStacLinks } from './services.ts';
import { validateItem } from './validate.ts';
import { buildVectorItem } from './vector-item.ts';

const db = testDb('stac_vec');
const geo = db.schema('_geo');

beforeAll(async () => {
  await db.pool.query(`CREATE SCHEMA "${geo}"`);
  // Two parcels in Web Mercator around (2°E, 48.8°N) and one point; a time column.
  await db.pool.query(
    `CREATE TABLE "${geo}".parcels (id serial PRIMARY KEY, created_at timestamptz, geom geometry(Geometry, 3857))`,
  );
  await db.pool.query(`INSERT INTO "${geo}".parcels (created_at, geom) VALUES
    ('2021-01-01T00:00:00Z', ST_Transform(ST_MakeEnvelope(2.0, 48.8, 2.1, 48.9, 4326), 3857)),
    ('2021-03-01T00:00:00Z', ST_Transform(ST_Multi(ST_MakeEnvelope(2.2, 48.7, 2.3, 48.8, 4326)), 3857)),
    ('2021-02-01T00:00:00Z', NULL)`);
  await db.pool.query(`CREATE TABLE "${geo}".empty (id serial, geom geometry(Point, 4326))`);
  await db.pool.query(`CREATE TABLE "${geo}".nogeom (id serial)`);
  await db.pool.query(`CREATE TABLE "${geo}".wells (id serial, geom geometry(Point, 4326))`);
  await db.pool.query(`INSERT INTO "${geo}".wells (geom) VALUES (ST_SetSRID(ST_MakePoint(10, 20), 4326))`);
});
afterAll(() => db.drop());

describe('buildVectorItem', () => {
  it('gives the bbox in EPSG:4326, row count, geometry types, SRID and the time range', async () => {
    const item = await buildVectorItem(db.pool, {
      schema: geo,
      table: 'parcels',
      collection: 'vectors',
      featuresHref: '/features/collections/parcels',
    });
    expect(item.id).toBe(`postgis-${geo}-parcels`);
    expect(item.bbox![0]).toBeCloseTo(2.0, 6);
    expect(item.bbox![1]).toBeCloseTo(48.7, 6);
    expect(item.bbox![2]).toBeCloseTo(2.3, 6);
    expect(item.bbox![3]).toBeCloseTo(48.9, 6);
    expect(item.properties).toMatchObject({
      datetime: null,
      start_datetime: '2021-01-01T00:00:00.000Z',
      end_datetime: '2021-03-01T00:00:00.000Z',
      'postgis:row_count': 3,
      'postgis:geometry_types': ['MultiPolygon', 'Polygon'],
      'postgis:srid': 3857,
      'postgis:geometry_column': 'geom',
    });
    expect(item.assets.features).toMatchObject({ href: '/features/collections/parcels', type: 'application/geo+json' });
    const served = withStacLinks(item, 'http://h.test/stac');
    expect(served.assets.features!.href).toBe('http://h.test/features/collections/parcels');
    expect(validateItem(served)).toEqual([]);
  });

  it('keeps the first registration datetime of a table without time column (never a new "now")', async () => {
    const first = await buildVectorItem(db.pool, {
      schema: geo,
      table: 'wells',
      collection: 'vectors',
      now: () => new Date('2025-01-01T00:00:00Z'),
    });
    expect(first.properties.datetime).toBe('2025-01-01T00:00:00.000Z');
    expect(first.geometry).toEqual({ type: 'Point', coordinates: [10, 20] });
    const again = await buildVectorItem(db.pool, {
      schema: geo,
      table: 'wells',
      collection: 'vectors',
      previousDatetime: first.properties.datetime,
      now: () => new Date('2026-01-01T00:00:00Z'),
    });
    expect(again.properties.datetime).toBe('2025-01-01T00:00:00.000Z');
    expect(again.assets).toEqual({});
  });

  it('fails with TABLE_NOT_FOUND, EMPTY_TABLE and NO_GEOMETRY_COLUMN', async () => {
    await expect(
      buildVectorItem(db.pool, { schema: geo, table: 'missing', collection: 'vectors' }),
    ).rejects.toMatchObject({ code: 'TABLE_NOT_FOUND' });
    await expect(
      buildVectorItem(db.pool, { schema: geo, table: 'empty', collection: 'vectors' }),
    ).rejects.toMatchObject({ code: 'EMPTY_TABLE', message: expect.stringMatching(/has 0 rows/) });
    await expect(
      buildVectorItem(db.pool, { schema: geo, table: 'nogeom', collection: 'vectors' }),
    ).rejects.toMatchObject({ code: 'NO_GEOMETRY_COLUMN' });
    await expect(buildVectorItem(db.pool, { schema: geo, table: 'x"; drop', collection: 'vectors' })).rejects.toThrow(
      /Invalid SQL identifier/,
    );
  });
});
