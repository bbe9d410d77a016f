import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { testDb } from '../__fixtures__/db.ts';
import type { StacCollection, StacItem } from '../types.ts';
import { validateCollection } from '../validate.ts';
import { ensureStacStore, getCollection, upsertCollection, upsertItems } from './store.ts';

const db = testDb('stac_extent');
const schema = db.schema();

function item(
  id: string,
  box: [number, number, number, number],
  datetime: string,
  code: string,
  dtype: string,
): StacItem {
  const [w, s, e, n] = box;
  return {
    type: 'Feature',
    stac_version: '1.0.0',
    stac_extensions: [
      'https://stac-extensions.github.io/projection/v2.0.0/schema.json',
      'https://stac-extensions.github.io/raster/v1.1.0/schema.json',
    ],
    id,
    collection: 'growing',
    geometry: {
      type: 'Polygon',
      coordinates: [
        [
          [w, s],
          [e, s],
          [e, n],
          [w, n],
          [w, s],
        ],
      ],
    },
    bbox: box,
    properties: { datetime, 'proj:code': code },
    links: [],
    assets: {
      data: { href: `http://x.test/${id}.tif`, roles: ['data'], 'raster:bands': [{ data_type: dtype }] },
    },
  };
}

const collection: StacCollection = {
  type: 'Collection',
  stac_version: '1.0.0',
  id: 'growing',
  description: 'A collection that learns its extent from its items',
  license: 'proprietary',
  extent: { spatial: { bbox: [[-180, -90, 180, 90]] }, temporal: { interval: [[null, null]] } },
  links: [],
};

beforeAll(async () => {
  await ensureStacStore(db.pool, schema);
  await upsertCollection(db.pool, schema, collection);
});
afterAll(() => db.drop());

describe('collection extent and summaries', () => {
  it('equal the union of the items after each upsert, and follow an item that moves', async () => {
    await upsertItems(db.pool, schema, [item('a', [10, 40, 11, 41], '2020-03-01T00:00:00Z', 'EPSG:32632', 'uint8')]);
    let c = (await getCollection(db.pool, schema, 'growing'))!;
    expect(c.extent).toEqual({
      spatial: { bbox: [[10, 40, 11, 41]] },
      temporal: { interval: [['2020-03-01T00:00:00.000Z', '2020-03-01T00:00:00.000Z']] },
    });
    expect(c.summaries).toEqual({ 'proj:code': ['EPSG:32632'], 'raster:bands': [{ data_type: 'uint8' }] });

    await upsertItems(db.pool, schema, [
      item('b', [-5, 35, -4, 36], '2019-01-01T00:00:00Z', 'EPSG:32630', 'float32'),
      item('c', [20, 50, 22, 52], '2024-06-01T12:00:00Z', 'EPSG:32632', 'uint8'),
    ]);
    c = (await getCollection(db.pool, schema, 'growing'))!;
    expect(c.extent).toEqual({
      spatial: { bbox: [[-5, 35, 22, 52]] },
      temporal: { interval: [['2019-01-01T00:00:00.000Z', '2024-06-01T12:00:00.000Z']] },
    });
    expect(c.summaries).toEqual({
      'proj:code': ['EPSG:32630', 'EPSG:32632'],
      'raster:bands': [{ data_type: 'float32' }, { data_type: 'uint8' }],
    });
    expect(validateCollection(c)).toEqual([]);

    // Item c moves back inside: the extent shrinks to the union of what the items now cover.
    await upsertItems(db.pool, schema, [item('c', [0, 38, 1, 39], '2021-01-01T00:00:00Z', 'EPSG:32632', 'uint8')]);
    c = (await getCollection(db.pool, schema, 'growing'))!;
    expect(c.extent.spatial.bbox).toEqual([[-5, 35, 11, 41]]);
    expect(c.extent.temporal.interval).toEqual([['2019-01-01T00:00:00.000Z', '2021-01-01T00:00:00.000Z']]);

    // Replacing the collection (new title) keeps the extent its items give.
    await upsertCollection(db.pool, schema, { ...collection, title: 'Renamed' });
    c = (await getCollection(db.pool, schema, 'growing'))!;
    expect(c.title).toBe('Renamed');
    expect(c.extent.spatial.bbox).toEqual([[-5, 35, 11, 41]]);
  });
});
