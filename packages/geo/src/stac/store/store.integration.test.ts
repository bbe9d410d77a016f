import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DEFAULT_COLLECTIONS } from '../collections.ts';
import { testDb } from '../__fixtures__/db.ts';
import type { StacCollection, StacItem } from '../types.ts';
import { searchItems, parseDatetime, parseBbox } from './search.ts';
import {
  ensureStacStore,
  getCollection,
  getItem,
  listCollections,
  upsertCollection,
  upsertItem,
  upsertItems,
} from './store.ts';

const db = testDb('stac_store');
const schema = db.schema();

function item(id: string, lon: number, lat: number, datetime: string, collection = 'dev'): StacItem {
  return {
    type: 'Feature',
    stac_version: '1.0.0',
    stac_extensions: [],
    id,
    collection,
    geometry: {
      type: 'Polygon',
      coordinates: [
        [
          [lon, lat],
          [lon + 1, lat],
          [lon + 1, lat + 1],
          [lon, lat + 1],
          [lon, lat],
        ],
      ],
    },
    bbox: [lon, lat, lon + 1, lat + 1],
    properties: { datetime },
    links: [],
    assets: {},
  };
}

beforeAll(async () => {
  await ensureStacStore(db.pool, schema);
  await upsertItems(db.pool, schema, [
    item('a', 0, 0, '2020-01-01T00:00:00Z'),
    item('b', 10, 10, '2021-06-01T00:00:00Z'),
    item('c', 20, 20, '2022-01-01T00:00:00Z', 'cogs'),
    {
      ...item('am', 179.5, -17, '2022-06-01T00:00:00Z'),
      geometry: {
        type: 'MultiPolygon',
        coordinates: [
          [
            [
              [179.5, -17],
              [180, -17],
              [180, -16],
              [179.5, -16],
              [179.5, -17],
            ],
          ],
          [
            [
              [-180, -17],
              [-179.5, -17],
              [-179.5, -16],
              [-180, -16],
              [-180, -17],
            ],
          ],
        ],
      },
      bbox: [179.5, -17, -179.5, -16],
    },
  ]);
});
afterAll(() => db.drop());

describe('STAC store', () => {
  it('is created idempotently with the four default collections', async () => {
    await ensureStacStore(db.pool, schema);
    await Promise.all([ensureStacStore(db.pool, schema), ensureStacStore(db.pool, schema)]);
    expect((await listCollections(db.pool, schema)).map((c) => c.id)).toEqual(['cogs', 'dev', 'geoparquet', 'vectors']);
    const { rows } = await db.pool.query(`SELECT version FROM "${schema}".schema_migrations`);
    expect(rows).toEqual([{ version: 1 }]);
    const idx = await db.pool.query(
      `SELECT indexname FROM pg_indexes WHERE schemaname = $1 AND tablename = 'items' ORDER BY 1`,
      [schema],
    );
    expect(idx.rows.map((r) => r.indexname)).toContain('items_geometry_idx');
  });

  it('reports insert then update for the same (collection, id), never a duplicate', async () => {
    const first = await upsertItem(db.pool, schema, item('x', 1, 1, '2020-01-01T00:00:00Z'));
    const second = await upsertItem(db.pool, schema, item('x', 2, 2, '2020-01-02T00:00:00Z'));
    expect(first.inserted).toBe(true);
    expect(second.inserted).toBe(false);
    const { rows } = await db.pool.query(
      `SELECT count(*)::int AS n, min(ST_XMin(geometry)) AS x FROM "${schema}".items WHERE id = 'x'`,
    );
    expect(rows[0]).toEqual({ n: 1, x: 2 });
    expect((await getItem(db.pool, schema, 'dev', 'x'))!.bbox).toEqual([2, 2, 3, 3]);
    await db.pool.query(`DELETE FROM "${schema}".items WHERE id = 'x'`);
  });

  it('rejects an invalid item with its schema errors and writes nothing', async () => {
    const bad = item('bad', 0, 0, 'not-a-date');
    await expect(upsertItem(db.pool, schema, bad)).rejects.toMatchObject({
      code: 'STAC_INVALID',
      message: expect.stringMatching(/Item bad .*properties\/datetime/),
    });
    expect(await getItem(db.pool, schema, 'dev', 'bad')).toBeNull();
  });

  it('rejects an item of an unknown collection', async () => {
    await expect(upsertItem(db.pool, schema, item('y', 0, 0, '2020-01-01T00:00:00Z', 'nope'))).rejects.toMatchObject({
      code: 'STAC_COLLECTION_NOT_FOUND',
    });
  });

  it('creates and replaces collections after validation', async () => {
    const c: StacCollection = { ...DEFAULT_COLLECTIONS[0]!, id: 'extra', title: 'Extra' };
    expect(await upsertCollection(db.pool, schema, c)).toEqual({ inserted: true });
    expect(await upsertCollection(db.pool, schema, { ...c, title: 'Extra 2' })).toEqual({ inserted: false });
    expect((await getCollection(db.pool, schema, 'extra'))!.title).toBe('Extra 2');
    await expect(upsertCollection(db.pool, schema, { ...c, id: 'bad id' })).rejects.toMatchObject({
      code: 'STAC_INVALID',
    });
    await expect(upsertCollection(db.pool, schema, { ...c, extent: undefined } as never)).rejects.toThrow(/extent/);
  });

  it('searches by bbox, antimeridian bbox, intersects, datetime intervals, ids and collections', async () => {
    const ids = async (s: Parameters<typeof searchItems>[2]) =>
      (await searchItems(db.pool, schema, s)).items.map((i) => i.id);
    expect(await ids({ bbox: [9, 9, 12, 12] })).toEqual(['b']);
    expect(await ids({ bbox: [179, -20, -179, -10] })).toEqual(['am']);
    expect(await ids({ bbox: [-179.9, -16.5, -179.8, -16.4] })).toEqual(['am']);
    expect(await ids({ intersects: { type: 'Point', coordinates: [20.5, 20.5] } as never })).toEqual(['c']);
    expect(await ids({ datetime: parseDatetime('2021-01-01T00:00:00Z/..') })).toEqual(['c', 'am', 'b']);
    expect(await ids({ datetime: parseDatetime('../2020-12-31T00:00:00Z') })).toEqual(['a']);
    expect(await ids({ datetime: parseDatetime('2020-01-01T00:00:00Z') })).toEqual(['a']);
    expect(await ids({ collections: ['cogs'] })).toEqual(['c']);
    expect(await ids({ ids: ['a', 'c'] })).toEqual(['c', 'a']);
  });

  it('pages with a next token until the last page', async () => {
    const seen: string[] = [];
    let token: string | undefined;
    let pages = 0;
    do {
      const page = await searchItems(db.pool, schema, { limit: 3, token });
      expect(page.numberMatched).toBe(4);
      seen.push(...page.items.map((i) => i.id));
      token = page.next ?? undefined;
      pages++;
    } while (token);
    expect(pages).toBe(2);
    expect(seen).toEqual(['c', 'a', 'am', 'b']);
  });

  it('rejects bad queries with messages naming the parameter', async () => {
    expect(() => parseDatetime('2020-13-45')).toThrow(/datetime "2020-13-45" is invalid/);
    expect(() => parseDatetime('../..')).toThrow(/both ends are open/);
    expect(() => parseBbox('1,2,3')).toThrow(/bbox "1,2,3" is invalid/);
    expect(() => parseBbox([0, 10, 1, 5])).toThrow(/south 10 is above north 5/);
    await expect(searchItems(db.pool, schema, { bbox: [0, 0, 1, 1], intersects: { type: 'Point' } })).rejects.toThrow(
      /bbox and intersects/,
    );
    await expect(searchItems(db.pool, schema, { limit: 0 })).rejects.toThrow(/limit 0 is invalid/);
    await expect(searchItems(db.pool, schema, { token: 'zzz' })).rejects.toThrow(/token/);
    await expect(searchItems(db.pool, schema, { intersects: { type: 'Blob' } })).rejects.toMatchObject({
      code: 'STAC_INVALID_QUERY',
    });
  });
});
