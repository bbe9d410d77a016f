import { describe, expect, it } from 'vitest';
import { DEFAULT_COLLECTIONS } from './collections.ts';
import { STAC_EXTENSIONS, validateCollection, validateItem } from './validate.ts';
import type { StacItem } from './types.ts';

const item = (): StacItem => ({
  type: 'Feature',
  stac_version: '1.0.0',
  id: 'bronze-a.tif',
  collection: 'dev',
  stac_extensions: [STAC_EXTENSIONS.projection, STAC_EXTENSIONS.raster, STAC_EXTENSIONS.file],
  geometry: {
    type: 'Polygon',
    coordinates: [
      [
        [0, 0],
        [1, 0],
        [1, 1],
        [0, 1],
        [0, 0],
      ],
    ],
  },
  bbox: [0, 0, 1, 1],
  properties: { datetime: '2020-05-17T10:30:00Z', 'proj:code': 'EPSG:4326', 'proj:shape': [10, 10] },
  links: [{ rel: 'collection', href: 'http://example.test/stac/collections/dev' }],
  assets: {
    data: {
      href: 'http://127.0.0.1:10000/devstoreaccount1/bronze/a.tif',
      roles: ['data'],
      'file:size': 10,
      'file:checksum': '1220ab',
      'raster:bands': [{ data_type: 'uint8' }],
    },
  },
});

describe('validateItem (offline STAC 1.0.0 + extensions)', () => {
  it('accepts a well-formed item with projection, raster and file fields', () => {
    expect(validateItem(item())).toEqual([]);
  });

  it('rejects a missing datetime, naming the path', () => {
    const bad = item();
    delete (bad.properties as Record<string, unknown>).datetime;
    const issues = validateItem(bad);
    expect(issues.length).toBeGreaterThan(0);
    expect(issues.some((i) => i.schema === 'item' && i.path === '/properties')).toBe(true);
  });

  it('rejects extension fields of the wrong shape, naming the extension', () => {
    const bad = item();
    bad.properties['proj:shape'] = [10];
    (bad.assets.data!['raster:bands'] as Array<Record<string, unknown>>)[0]!.data_type = 'uint7';
    bad.assets.data!['file:checksum'] = 'XYZ';
    const issues = validateItem(bad);
    const schemas = new Set(issues.map((i) => i.schema));
    expect(schemas).toContain(STAC_EXTENSIONS.projection);
    expect(schemas).toContain(STAC_EXTENSIONS.raster);
    expect(schemas).toContain(STAC_EXTENSIONS.file);
    expect(issues.some((i) => i.path === '/properties/proj:shape')).toBe(true);
  });

  it('rejects proj:epsg, which projection v2.0.0 replaced by proj:code', () => {
    const bad = item();
    bad.properties['proj:epsg'] = 4326;
    expect(validateItem(bad).some((i) => i.schema === STAC_EXTENSIONS.projection)).toBe(true);
  });

  it('rejects an undeclared extension it cannot check offline', () => {
    const bad = item();
    bad.stac_extensions.push('https://stac-extensions.github.io/eo/v1.1.0/schema.json');
    expect(
      validateItem(bad)
        .map((i) => i.message)
        .join(),
    ).toMatch(/eo\/v1.1.0.*not bundled/);
  });

  it('rejects bad geometry through the GeoJSON schema', () => {
    const bad = item();
    bad.geometry = { type: 'Polygon', coordinates: [[[0, 0]]] };
    expect(validateItem(bad).length).toBeGreaterThan(0);
  });

  it('accepts the default collections', () => {
    for (const c of DEFAULT_COLLECTIONS) expect(validateCollection(c)).toEqual([]);
    expect(validateCollection({ ...DEFAULT_COLLECTIONS[0], license: undefined }).length).toBeGreaterThan(0);
  });
});
