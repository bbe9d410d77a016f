/**
 * Test sources in every format, generated with the GDAL CLIs from small GeoJSON documents
 * (never checked in): mixed Polygon/MultiPolygon with null and invalid geometries, non-ASCII
 * attributes, a projected CRS, Z coordinates, a multi-layer GeoPackage, CSV with WKT and with
 * lat/lon, KML/KMZ, FlatGeobuf, GML, and zipped shapefiles in CP1252 with and without a .cpg.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const sq = (x0: number, y0: number, s: number) => [
  [
    [x0, y0],
    [x0 + s, y0],
    [x0 + s, y0 + s],
    [x0, y0 + s],
    [x0, y0],
  ],
];

/** 6 features: 2 Polygons, 2 MultiPolygons, 1 bow-tie (invalid), 1 null geometry. */
export const mixedPolygons = {
  type: 'FeatureCollection',
  features: [
    {
      type: 'Feature',
      properties: {
        'Name Full': 'Zürich',
        'Surface (m²)': 1.5,
        code: 9007199254740000,
        fid: 'x1',
        day: '2024-03-01',
        seen: '2024-03-01T10:20:30Z',
      },
      geometry: { type: 'Polygon', coordinates: sq(8.5, 47.3, 0.1) },
    },
    {
      type: 'Feature',
      properties: {
        'Name Full': '東京',
        'Surface (m²)': 2.5,
        code: 2,
        fid: 'x2',
        day: '2024-03-02',
        seen: '2024-03-02T00:00:00Z',
      },
      geometry: { type: 'MultiPolygon', coordinates: [sq(139.6, 35.6, 0.2), sq(140, 36, 0.1)] },
    },
    {
      type: 'Feature',
      properties: { 'Name Full': 'Ærøskøbing', 'Surface (m²)': 3.5, code: 3, fid: 'x3', day: null, seen: null },
      geometry: { type: 'Polygon', coordinates: sq(10.4, 54.8, 0.05) },
    },
    {
      type: 'Feature',
      properties: { 'Name Full': 'São Paulo', 'Surface (m²)': null, code: 4, fid: 'x4', day: '2024-03-04', seen: null },
      geometry: { type: 'MultiPolygon', coordinates: [sq(-46.7, -23.6, 0.3)] },
    },
    {
      type: 'Feature',
      properties: { 'Name Full': 'bow\ttie "\\"', 'Surface (m²)': 0, code: 5, fid: 'x5', day: null, seen: null },
      geometry: {
        type: 'Polygon',
        coordinates: [
          [
            [0, 0],
            [2, 2],
            [2, 0],
            [0, 2],
            [0, 0],
          ],
        ],
      },
    },
    {
      type: 'Feature',
      properties: { 'Name Full': 'nowhere', 'Surface (m²)': 0, code: 6, fid: 'x6', day: null, seen: null },
      geometry: null,
    },
  ],
};

/** n points on a grid, with a name and an integer. */
export function points(n: number, x0 = -10, y0 = 40) {
  return {
    type: 'FeatureCollection',
    features: Array.from({ length: n }, (_, i) => ({
      type: 'Feature',
      properties: { name: `p${i}`, rank: i, ville: i % 2 ? 'Besançon' : 'Göttingen' },
      geometry: { type: 'Point', coordinates: [x0 + (i % 100) * 0.01, y0 + Math.floor(i / 100) * 0.01] },
    })),
  };
}

/** 3D lines. */
export const lines3d = {
  type: 'FeatureCollection',
  features: [
    {
      type: 'Feature',
      properties: { name: 'a' },
      geometry: {
        type: 'LineString',
        coordinates: [
          [1, 1, 10],
          [2, 2, 20],
        ],
      },
    },
    {
      type: 'Feature',
      properties: { name: 'b' },
      geometry: {
        type: 'MultiLineString',
        coordinates: [
          [
            [3, 3, 30],
            [4, 4, 40],
          ],
          [
            [5, 5, 5],
            [6, 6, 6],
          ],
        ],
      },
    },
  ],
};

export interface Fixtures {
  dir: string;
  path(name: string): string;
  cleanup(): void;
}

const ogr = (...args: string[]) => execFileSync('ogr2ogr', args, { stdio: 'pipe' });

export function makeFixtures(): Fixtures {
  const dir = mkdtempSync(join(tmpdir(), 'cm-vector-'));
  const p = (n: string) => join(dir, n);
  const json = (name: string, doc: unknown) => {
    writeFileSync(p(name), JSON.stringify(doc));
    return p(name);
  };

  const mixed = json('mixed.geojson', mixedPolygons);
  const pts = json('points.geojson', points(2500));
  json('lines3d.geojson', lines3d);
  ogr('-f', 'FlatGeobuf', p('lines3d.fgb'), p('lines3d.geojson'));

  // Projected CRS (UTM 33N) in a GeoPackage.
  ogr('-f', 'GPKG', p('projected.gpkg'), pts, '-t_srs', 'EPSG:32633', '-nln', 'pts_utm');
  // Multi-layer GeoPackage.
  ogr('-f', 'GPKG', p('multi.gpkg'), pts, '-nln', 'cities');
  ogr('-f', 'GPKG', '-update', p('multi.gpkg'), mixed, '-nln', 'zones', '-nlt', 'GEOMETRY');

  // Zipped shapefile in CP1252 with its .cpg, and a copy without the .cpg.
  ogr(
    '-f',
    'ESRI Shapefile',
    p('shp_cp1252'),
    mixed,
    '-nln',
    'parcels',
    '-lco',
    'ENCODING=CP1252',
    '-nlt',
    'MULTIPOLYGON',
  );
  execFileSync('zip', [
    '-qj',
    p('parcels.zip'),
    ...['shp', 'shx', 'dbf', 'prj', 'cpg'].map((e) => p(`shp_cp1252/parcels.${e}`)),
  ]);
  execFileSync('zip', [
    '-qj',
    p('parcels_nocpg.zip'),
    ...['shp', 'shx', 'dbf', 'prj'].map((e) => p(`shp_cp1252/parcels.${e}`)),
  ]);

  // CSVs: WKT column; custom lat/lon names; common names (auto-detected).
  writeFileSync(
    p('wkt.csv'),
    'id,label,wkt\n1,Zoé,"POLYGON((0 0,1 0,1 1,0 1,0 0))"\n2,Øre,"MULTIPOLYGON(((2 2,3 2,3 3,2 3,2 2)))"\n3,none,\n',
  );
  writeFileSync(
    p('latlon.csv'),
    'station,breite,laenge,temp\nMünchen,48.137,11.575,12.5\nKöln,50.937,6.96,11.0\nKiel,54.323,10.139,9.1\n',
  );
  writeFileSync(p('auto.csv'), 'name,latitude,longitude\na,10,20\nb,11,21\n');

  ogr('-f', 'LIBKML', p('mixed.kml'), mixed);
  ogr('-f', 'LIBKML', p('mixed.kmz'), mixed);
  ogr('-f', 'FlatGeobuf', p('mixed.fgb'), mixed);
  // GML element names cannot hold the spaces of 'Name Full': keep the plain fields.
  ogr('-f', 'GML', p('mixed.gml'), mixed, '-select', 'code,day');

  return { dir, path: p, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}

const PG = 'PG:host=127.0.0.1 port=5432 dbname=coremachine user=postgres';

/** The reference load: ogr2ogr into `schema.table`, promoted to Multi*, in EPSG:4326. */
export function ogr2ogrReference(source: string, schema: string, table: string, extra: string[] = []): void {
  ogr(
    '-f',
    'PostgreSQL',
    PG,
    source,
    '-nln',
    `${schema}.${table}`,
    '-nlt',
    'PROMOTE_TO_MULTI',
    '-t_srs',
    'EPSG:4326',
    '-lco',
    'GEOMETRY_NAME=geom',
    '-lco',
    'SPATIAL_INDEX=NONE',
    '--config',
    'PG_USE_COPY',
    'YES',
    ...extra,
  );
}
