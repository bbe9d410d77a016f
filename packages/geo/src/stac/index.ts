/**
 * STAC for CoreMachine: item builders (rasters read in place through GDAL, PostGIS tables),
 * offline validation against STAC 1.0.0 + projection/raster/file extensions, and the STAC
 * store in PostgreSQL (collections, items, upserts, search).
 */
export * from './types.ts';
export * from './errors.ts';
export { rasterItemId, vectorItemId, COLLECTION_ID_PATTERN } from './ids.ts';
export {
  validateItem,
  validateCollection,
  validateCatalog,
  formatIssues,
  STAC_EXTENSIONS,
  type StacValidationIssue,
} from './validate.ts';
export { footprintWgs84, outlineRing, type Footprint } from './footprint.ts';
export { rasterBands, statistics, integerStatistics, STATS_MAX_SIDE, type RasterBand } from './raster-bands.ts';
export { multihashSha256 } from './checksum.ts';
export { geoTiffKeys, type GeoTiffKeys } from './geotiff-keys.ts';
export {
  buildRasterItem,
  isCogLayout,
  tiffDatetime,
  GEOTIFF,
  COG,
  type RasterSource,
  type RasterItemOptions,
} from './raster-item.ts';
export {
  buildBlobRasterItem,
  registerBlobRaster,
  IN_MEMORY_MAX_BYTES,
  type BlobRasterOptions,
  type ListedBlob,
} from './blob-raster.ts';
export { buildVectorItem, type VectorItemOptions } from './vector-item.ts';
export { DEFAULT_COLLECTIONS } from './collections.ts';
export {
  ensureStacStore,
  upsertCollection,
  getCollection,
  listCollections,
  assertCollectionExists,
  assertValidItems,
  upsertItems,
  refreshCollectionExtent,
  upsertItem,
  getItem,
  DEFAULT_STAC_SCHEMA,
  type UpsertResult,
  type UpsertOptions,
} from './store/store.ts';
export {
  searchItems,
  parseDatetime,
  parseBbox,
  DEFAULT_LIMIT,
  MAX_LIMIT,
  type ItemSearch,
  type SearchPage,
} from './store/search.ts';
export { withStacLinks, type StacServices } from './services.ts';
