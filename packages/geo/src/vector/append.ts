import gdal from 'gdal-async';
import type { ColumnPlan } from './field-types.ts';
import { dimensionsOf, type GeometryPlan } from './geometry-kind.ts';
import { isWgs84 } from './layer-schema.ts';

/** A SQLite identifier (GeoPackage SQL): any character, double quotes doubled. */
const sqliteIdent = (name: string) => `"${name.replace(/"/g, '""')}"`;

/**
 * GeoPackage SQL selecting the FID range [lo, next) of a layer in the destination table's
 * column order: the row key first (`fid + offset`, an expression so that GDAL takes it as a
 * field rather than the result's FID), then the attributes, then the geometry. Written with
 * `-fieldmap identity` into a table whose columns are in that order.
 */
export function gpkgRangeSql(
  layer: gdal.Layer,
  columns: readonly ColumnPlan[],
  lo: number,
  next: number | undefined,
  offset: number,
): string {
  const fid = sqliteIdent(layer.fidColumn || 'fid');
  const cols = [
    `${fid} + ${offset} AS cm_key`,
    ...columns.map((c) => sqliteIdent(c.source)),
    sqliteIdent(layer.geomColumn || 'geom'),
  ];
  const where = next === undefined ? `${fid} >= ${lo}` : `${fid} >= ${lo} AND ${fid} < ${next}`;
  return `SELECT ${cols.join(', ')} FROM ${sqliteIdent(layer.name)} WHERE ${where}`;
}

export interface PgTransactionOptions {
  /** GDAL `PG:` connection string. */
  pg: string;
  /** The one table GDAL should know about (`schema.table`): the open lists no other. */
  table: string;
  /**
   * Statements run in the transaction before any row is written (e.g. a guard that fails when
   * the work was already done). A failure fails the open, and nothing is written.
   */
  guard: string;
}

/**
 * Opens a PostgreSQL destination for GDAL inside a transaction this code owns: `BEGIN` and
 * `guard` run first, and GDAL's own transactions become savepoints within it. Nothing GDAL
 * writes is visible until `commitPgTransaction`; closing the dataset without it (or the process
 * dying) rolls everything back. Synchronous (a connection and one catalog query).
 */
export function openPgTransaction(options: PgTransactionOptions): gdal.Dataset {
  // COPY for appends to an existing table too (GDAL's default only covers tables it creates).
  gdal.config.set('PG_USE_COPY', 'YES');
  return gdal.drivers
    .get('PostgreSQL')
    .open(options.pg, 'r+', [`PRELUDE_STATEMENTS=BEGIN;${options.guard}`, `TABLES=${options.table}`]);
}

/**
 * Runs statements (`COMMIT`, an `UPDATE` ...) on the dataset's connection. GDAL returns no
 * result set for them, which gdal-async reports as an error without a message: only errors
 * with a message are real. Callers confirm a commit from another connection.
 */
export function execPg(dataset: gdal.Dataset, sql: string): void {
  try {
    dataset.executeSQL(sql);
  } catch (err) {
    if ((err as Error).message) throw err;
  }
}

export interface AppendRowsOptions {
  /** Destination `schema.table`, already existing, columns in the order of `sql`. */
  table: string;
  /** Source SQL (the source's own dialect) giving the rows in the destination's column order. */
  sql: string;
  geometry: GeometryPlan;
  /** The source layer (for its CRS: reprojected to EPSG:4326 unless WGS 84 or none). */
  layer: gdal.Layer;
  signal?: AbortSignal | undefined;
}

/**
 * Appends the rows of `sql` on `source` to a table of an open PostgreSQL destination with GDAL's
 * vector translation (COPY in groups of 65,536; the rows never cross JavaScript). Geometries are
 * promoted to Multi* when the column is, and given its dimensions; a row that does not fit the
 * column (type, NOT NULL) fails the whole call: the caller's transaction then holds a partial
 * write that it must roll back.
 */
export async function appendRows(
  destination: gdal.Dataset,
  source: gdal.Dataset,
  options: AppendRowsOptions,
): Promise<void> {
  const srs = options.layer.srs;
  const args = [
    '-append',
    '-fieldmap',
    'identity',
    '-nln',
    options.table,
    '-gt',
    '65536',
    '-dim',
    dimensionsOf(options.geometry),
    ...(options.geometry.multi ? ['-nlt', 'PROMOTE_TO_MULTI'] : []),
    ...(srs && !isWgs84(srs) ? ['-t_srs', 'EPSG:4326'] : []),
    '-sql',
    options.sql,
  ];
  if (options.signal?.aborted) throw options.signal.reason ?? new Error('aborted');
  await gdal.vectorTranslateAsync(destination, source, args);
}
