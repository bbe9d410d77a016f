import gdal from 'gdal-async';
import type { Dimensions } from './geometry-kind.ts';
import { isWgs84 } from './layer-schema.ts';

/** Names of the loader's own columns in a chunk table (unlikely to collide with source fields). */
export const CHUNK_FID = 'cm_fid';
export const CHUNK_GEOM = 'cm_geom';

/**
 * A PostgreSQL connection URL (`postgres://user:pw@host:port/db?sslmode=...`) as a GDAL `PG:`
 * connection string, in libpq keyword form with the session in UTC (so date-times without a
 * zone are read as UTC, as the COPY path does).
 */
export function gdalPgConnection(url: string): string {
  const u = new URL(url);
  const kv: Record<string, string> = {};
  if (u.hostname) kv.host = decodeURIComponent(u.hostname.replace(/^\[|\]$/g, ''));
  if (u.port) kv.port = u.port;
  const db = decodeURIComponent(u.pathname.replace(/^\//, ''));
  if (db) kv.dbname = db;
  if (u.username) kv.user = decodeURIComponent(u.username);
  if (u.password) kv.password = decodeURIComponent(u.password);
  for (const [k, v] of u.searchParams) if (/^[a-z_]+$/.test(k) && k !== 'options') kv[k] = v;
  kv.options = '-c TimeZone=UTC';
  kv.application_name = 'coremachine-gdal';
  const quote = (v: string) => `'${v.replace(/\\/g, '\\\\').replace(/'/g, "\\'")}'`;
  return `PG:${Object.entries(kv)
    .map(([k, v]) => `${k}=${quote(v)}`)
    .join(' ')}`;
}

export interface TranslateChunkOptions {
  /** GDAL `PG:` connection string of the destination database. */
  pg: string;
  /** Destination `schema.table`: created (replaced) unlogged, without index. */
  table: string;
  /** OGR attribute filter selecting the chunk, or null for the whole layer. */
  where: string | null;
  /** Keep the source FIDs in `cm_fid` (else `cm_fid` numbers the written rows 1, 2, ...). */
  preserveFid: boolean;
  /**
   * Coordinate dimensions written (every geometry is given them; a missing Z or M becomes 0).
   * The source's own: the caller drops dimensions in SQL, where it can count what it drops.
   */
  dimensions: Dimensions;
  /**
   * Skip features GDAL cannot write (e.g. that fail to reproject) instead of failing. Slow (GDAL
   * then commits feature by feature): for the retry of a chunk that failed that way.
   */
  skipFailures?: boolean | undefined;
  signal?: AbortSignal | undefined;
}

/** The OGR attribute filter for FIDs in [lo, next): the FID column of a GeoPackage, else OGR's FID. */
export function fidFilter(layer: gdal.Layer, lo: number, next: number | undefined): string {
  const fid = layer.fidColumn ? `"${layer.fidColumn.replace(/"/g, '""')}"` : 'FID';
  return next === undefined ? `${fid} >= ${lo}` : `${fid} >= ${lo} AND ${fid} < ${next}`;
}

/**
 * Arguments reprojecting to EPSG:4326 (longitude, latitude) when the source has another CRS;
 * none when it has none (taken as EPSG:4326 by the caller) or is WGS 84 already.
 */
function reprojection(layer: gdal.Layer): string[] {
  const srs = layer.srs;
  if (!srs || isWgs84(srs)) return [];
  return ['-t_srs', 'EPSG:4326'];
}

/**
 * Writes one range of a source layer into a fresh unlogged PostgreSQL table with GDAL's
 * vector translation (the rows never cross JavaScript): COPY in groups of 65,536, source field
 * names kept as they are (`-lco LAUNDER=NO`), no spatial index, geometries untyped (the
 * caller fits them to the target column in SQL), reprojected to EPSG:4326 when needed.
 * Runs in GDAL's thread pool; memory is bounded by one COPY group.
 */
export async function translateChunk(
  dataset: gdal.Dataset,
  layer: gdal.Layer,
  options: TranslateChunkOptions,
): Promise<void> {
  const args = [
    '-f',
    'PostgreSQL',
    '-nln',
    options.table,
    '-overwrite',
    '-lco',
    'UNLOGGED=ON',
    '-lco',
    'SPATIAL_INDEX=NONE',
    '-lco',
    'LAUNDER=NO',
    '-lco',
    'PRECISION=NO',
    '-lco',
    `FID=${CHUNK_FID}`,
    '-lco',
    'FID64=TRUE',
    '-lco',
    `GEOMETRY_NAME=${CHUNK_GEOM}`,
    // Untyped: a Polygon layer holding a stray LineString must reach SQL, not fail the COPY.
    '-nlt',
    `GEOMETRY${options.dimensions.slice(2)}`,
    '-dim',
    options.dimensions,
    ...(options.skipFailures ? ['-skipfailures'] : ['-gt', '65536']),
    ...(options.preserveFid ? ['-preserve_fid'] : []),
    ...(options.where ? ['-where', options.where] : []),
    ...reprojection(layer),
    layer.name,
  ];
  // No progress callback: it would run on the JavaScript thread, and a synchronous GDAL call
  // there on the same dataset would then wait for this translation, which waits for it. An
  // abort is honoured between chunks.
  if (options.signal?.aborted) throw options.signal.reason ?? new Error('aborted');
  const out = await gdal.vectorTranslateAsync(options.pg, dataset, args);
  out.close();
}
