import './services.ts';
import { defineJob } from '@coremachine/core-machine';
import { parameters } from './params.ts';
import { prepare } from './stages/prepare.ts';
import { load } from './stages/load.ts';
import { finalize } from './stages/finalize.ts';
import { aggregate, result } from './result.ts';

export { parameters, type Params } from './params.ts';
export { result } from './result.ts';
export type { VectorServices } from './services.ts';
export { loadChunk } from './load-chunk.ts';

/**
 * ingest_vector: loads one vector file (GeoJSON, zipped Shapefile, GeoPackage, CSV, KML, KMZ,
 * FlatGeobuf, GML) from blob storage into a PostGIS table, EPSG:4326, in three stages:
 * prepare (schema, staging table, chunk plan), load (one task per chunk, COPY, idempotent),
 * finalize (GiST index, ANALYZE, atomic swap).
 */
export default defineJob({
  type: 'ingest_vector',
  version: '1.0.0',
  description: 'Load a vector file from blob storage into a PostGIS table (EPSG:4326), chunked and idempotent',
  parameters,
  stages: [prepare, load, finalize],
  result,
  aggregate,
  // One GDAL translation per handler; two at once per worker (this is 2-core sized: GDAL
  // encodes in the worker while PostgreSQL parses in its own process).
  queue: { batchSize: 1, concurrency: 2 },
});
