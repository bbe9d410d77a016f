/**
 * Vector helpers shared by the vector jobs: identifiers and column laundering, opening
 * sources with GDAL (in place through /vsiaz/ and /vsizip/), layer scans and chunk ranges,
 * geometry column planning, and COPY text encoding of feature ranges.
 */
export {
  sqlIdentifier,
  launderColumnNames,
  collidingFieldNames,
  SQL_IDENTIFIER_PATTERN,
  MAX_IDENTIFIER_BYTES,
} from './identifiers.ts';
export { VECTOR_FORMATS, DRIVER_OF, extensionOf, formatOf, type VectorFormat } from './formats.ts';
export { openVectorLayer, innerPath, type SourceOptions, type OpenedLayer } from './open-source.ts';
export { columnsOf, describeSrs, isWgs84, toWgs84, FID_COLUMN, GEOM_COLUMN } from './layer-schema.ts';
export { pgTypeFor, copyFormatterFor, type ColumnPlan } from './field-types.ts';
export {
  planGeometry,
  pgGeometryType,
  castGeometrySql,
  flatType,
  typeHasZ,
  typeHasM,
  dimensionsOf,
  zmFlagOf,
  pgSubtype,
  forceDimensionsSql,
  familyOf,
  type Dimensions,
  type GeometryPlan,
  type GeometryFamily,
} from './geometry-kind.ts';
export { scanLayer, autoChunkSize, type FeatureRange, type LayerScan } from './scan.ts';
export { copyRowsForRange, type RangeStats, type ReadRangeOptions, type SkipReason } from './read-range.ts';
export { copyEscape, copyArray, COPY_NULL } from './copy-text.ts';
export { planChunks, type ChunkPlan } from './plan-chunks.ts';
export {
  translateChunk,
  gdalPgConnection,
  fidFilter,
  CHUNK_FID,
  CHUNK_GEOM,
  type TranslateChunkOptions,
} from './translate.ts';
export {
  gpkgRangeSql,
  openPgTransaction,
  execPg,
  appendRows,
  type PgTransactionOptions,
  type AppendRowsOptions,
} from './append.ts';
export {
  RAW_BYTES_ENCODING,
  REPLACEMENT_CHAR,
  rawBytes,
  isUtf8,
  detectSingleByte,
  decodeRaw,
  sampleNonAscii,
  type SampledText,
} from './encoding.ts';
export {
  STAGING_TABLE_PREFIX,
  CHUNK_TABLE_PREFIX,
  isWorkingTable,
  factsComment,
  parseFactsComment,
  listPublishedTables,
  tableColumns,
  tableVersionSql,
  withCollectionIds,
  featuresCollectionId,
  type TableFacts,
  type PublishedTable,
  type TableColumn,
} from './published.ts';
