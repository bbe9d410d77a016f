/**
 * Raster validation and Cloud-Optimized GeoTIFF creation on gdal-async. Rasters are read in
 * place (local paths or /vsiaz/) and streamed through GDAL: no whole raster is held in JS.
 */
export { validateRaster } from './validate.ts';
export type { ValidateRasterOptions } from './validate.ts';
export { createCog, cogCreationOptions, categoryNamesOf, setCategoryNames } from './cog.ts';
export type { CreateCogOptions, CreateCogResult } from './cog.ts';
export { checkCog } from './cog-check.ts';
export type { CogCheck } from './cog-check.ts';
export { describeRaster } from './describe.ts';
export type { RasterDescription } from './describe.ts';
export { readTiffStructure } from './tiff-structure.ts';
export { withTempDir } from './tmp.ts';
export { openRaster } from './open.ts';
export { parseCrs, crsLabel, resolveCrs, isEngineeringCrs, notGeoreferencedError, crsShortName } from './crs.ts';
export type { RasterWarning, CrsSource } from './crs.ts';
export { rasterBounds, boundsTo4326, isRotated } from './bounds.ts';
export type { Bounds } from './bounds.ts';
export { detectRasterType } from './detect-type.ts';
export type { Confidence, TypeDetection } from './detect-type.ts';
export { checkBitDepth, typeHolds, smallestIntType } from './bit-depth.ts';
export { bandRange, unionRange } from './range.ts';
export type { BandRange } from './range.ts';
export { optimalCogSettings, compressionProblem, RASTER_TYPES, COMPRESSIONS, RESAMPLINGS } from './cog-settings.ts';
export type { RasterType, DetectedType, Compression, Resampling, CogSettings } from './cog-settings.ts';
export { RASTER_ERROR_CODES, rasterError } from './errors.ts';
export type { RasterErrorCode } from './errors.ts';
export {
  validationResultSchema,
  cogSettingsSchema,
  rasterWarningSchema,
  nodataSchema,
  nodataToJson,
} from './schemas.ts';
export type { ValidationResult, NodataJson } from './schemas.ts';
export * as rasterFixtures from './fixtures.ts';
export { planGrid, splitGrid, windowExtent, uncompressedBytes } from './grid.ts';
export type { RasterGrid, GridSource, GridWindow, PlannedGrid, GeoTransform } from './grid.ts';
export { writeWindow } from './windows.ts';
export type { WriteWindowOptions } from './windows.ts';
export { assembleCog } from './assemble.ts';
export type { AssembleCogOptions } from './assemble.ts';
export { collarFor, collarArgs } from './cog.ts';
export type { CollarMask } from './cog.ts';
export { MOSAIC_ERROR_CODES, mosaicError, mosaicInputInfo, checkMosaicInputs } from './mosaic.ts';
export type { MosaicErrorCode, MosaicInputInfo } from './mosaic.ts';
