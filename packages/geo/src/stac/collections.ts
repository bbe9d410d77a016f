import type { StacCollection } from './types.ts';

const GLOBAL_EXTENT: StacCollection['extent'] = {
  spatial: { bbox: [[-180, -90, 180, 90]] },
  temporal: { interval: [[null, null]] },
};

function collection(id: string, title: string, description: string, keywords: string[]): StacCollection {
  return {
    type: 'Collection',
    stac_version: '1.0.0',
    id,
    title,
    description,
    license: 'proprietary',
    keywords,
    extent: GLOBAL_EXTENT,
    links: [],
  };
}

/** The collections every STAC store starts with (created idempotently by `ensureStacStore`). */
export const DEFAULT_COLLECTIONS: readonly StacCollection[] = [
  collection(
    'dev',
    'Development rasters',
    'Rasters catalogued in place from input containers (bronze), for development and inspection.',
    ['raster', 'bronze'],
  ),
  collection(
    'cogs',
    'Cloud-optimised GeoTIFFs',
    'Cloud-optimised GeoTIFFs written by process_raster to the silver container.',
    ['raster', 'cog', 'silver'],
  ),
  collection(
    'vectors',
    'PostGIS vector tables',
    'Vector datasets loaded into PostGIS, one item per table, served through OGC API Features.',
    ['vector', 'postgis'],
  ),
  collection('geoparquet', 'GeoParquet datasets', 'Vector datasets published as GeoParquet files.', [
    'vector',
    'geoparquet',
  ]),
];
