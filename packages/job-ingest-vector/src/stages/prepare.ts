import { z } from 'zod';
import gdal from 'gdal-async';
import { defineStage, permanentError } from '@coremachine/core-machine';
import {
  autoChunkSize,
  collidingFieldNames,
  columnsOf,
  describeSrs,
  flatType,
  planChunks,
  planGeometry,
  scanLayer,
  typeHasZ,
  typeHasM,
  dimensionsOf,
  familyOf,
} from '@coremachine/geo/vector';
import { targetTableName, type Params } from '../params.ts';
import { formatFor, openSource } from '../source.ts';
import {
  assertSchemaAllowed,
  createStagingTable,
  dropJobTables,
  stagingTable,
  tableExists,
  tableExistsError,
} from '../tables.ts';
import { columnPlan, dimensions, featureRange, geometryPlan, tableRef } from '../schemas.ts';
import { resolveEncoding, textEncoding } from '../encoding.ts';

/** The CRS of sources that declare none. */
export const ASSUMED_CRS = 'EPSG:4326';

const fileStem = (path: string) => (path.split('/').pop() ?? path).replace(/\.[^.]*$/, '');

export const prepareOutput = z.object({
  started_at: z.string(),
  source: z.object({
    container: z.string(),
    blob: z.string(),
    size: z.number(),
    etag: z.string(),
    format: z.string(),
    driver: z.string(),
    layer: z.string(),
  }),
  staging: tableRef,
  columns: z.array(columnPlan),
  geometry: geometryPlan,
  /** The source's coordinate dimensions (the column's unless force_2d). */
  source_dimensions: dimensions.default('XY'),
  source_crs: z.string().nullable(),
  crs_assumed: z.boolean(),
  /** The CRS the coordinates were taken in when the source has none. */
  assumed_crs: z.string().nullable().default(null),
  /** How the text was decoded; its `gdal` option is given to every load task. */
  encoding: textEncoding.nullable().default(null),
  lon_lat_columns: z.boolean(),
  feature_count: z.int().nonnegative(),
  chunk_size: z.int().positive(),
  ranges: z.array(featureRange),
  warnings: z.array(z.string()),
});

/**
 * Stage 1, one task: open the source once, read its schema, create the staging table once and
 * plan the chunks as FID ranges from the driver's count and FID bounds (no feature is read in
 * JavaScript, except the geometry types of layers that do not declare one).
 */
export const prepare = defineStage<Params>()({
  name: 'prepare',
  description: 'Open the source, read its schema, create the staging table, plan chunks',
  input: z.object({}),
  output: prepareOutput,
  plan: () => [{ key: 'prepare', input: {} }],
  handler: async (_input, ctx) => {
    const startedAt = new Date().toISOString();
    const { params, services } = ctx;
    assertSchemaAllowed(params.schema, services);
    const target = { schema: params.schema, table: targetTableName(params) };
    if (!params.overwrite && (await tableExists(ctx.db, target))) throw tableExistsError(target);
    const format = formatFor(params);
    const warnings: string[] = [];
    let src = await openSource(params, services, ctx.signal);
    let encoding;
    try {
      encoding = await resolveEncoding(params, services, src, ctx.signal, warnings);
    } catch (err) {
      src.close();
      throw err;
    }
    if (encoding.gdal && encoding.gdal !== params.encoding) {
      // Field names are decoded too: read the schema in the encoding chosen.
      src.close();
      src = await openSource({ ...params, encoding: encoding.gdal }, services, ctx.signal, { expectedEtag: src.etag });
    }
    try {
      const { layer } = src;
      // A layer named after the file GDAL opened (GeoJSON, CSV ...) is named after the blob: a
      // local copy's file name says nothing.
      const layerName = layer.name === fileStem(src.path) ? fileStem(params.blob_name) : layer.name;
      const columns = columnsOf(layer);
      // GDAL's PostgreSQL writer (every format but GeoPackage, which is read by column position)
      // cannot keep two fields apart that differ only in case or beyond 63 bytes.
      const clash = src.driver === 'GPKG' ? [] : collidingFieldNames(columns.map((c) => c.source));
      if (clash.length)
        throw permanentError(
          'FIELD_NAMES_COLLIDE',
          `${params.container_name}/${params.blob_name}: fields ${clash.map(([a, b]) => `"${a}" and "${b}"`).join(', ')} differ only in case or beyond their first 63 bytes, and cannot both be loaded; rename one of each pair`,
          { file: `${params.container_name}/${params.blob_name}`, fields: clash },
        );
      const declared = flatType(layer.geomType);
      // Unknown or collection types say nothing about the features: read their geometry types.
      const readGeometries = familyOf(declared) === null || declared === gdal.wkbGeometryCollection;
      const estimate = layer.features.count(false);
      const chunkSize =
        params.chunk_size === 'auto'
          ? autoChunkSize(
              estimate >= 0 ? estimate : layer.features.count(true),
              columns.length,
              familyOf(declared) === 'point',
            )
          : params.chunk_size;
      ctx.progress(0.1, 'planning chunks');
      const plan = planChunks(src.dataset, layer, src.driver, chunkSize);
      if (plan.featureCount === 0)
        throw permanentError(
          'NO_FEATURES',
          `${params.container_name}/${params.blob_name} (layer ${layerName}) has no features`,
        );
      const types = readGeometries
        ? scanLayer(layer, plan.featureCount, true, `${params.container_name}/${params.blob_name}`)
        : null;
      const sourceGeometry = planGeometry(
        types ? types.geometryTypes : [declared],
        typeHasZ(layer.geomType) || !!types?.anyZ,
        typeHasM(layer.geomType) || !!types?.anyM,
      );
      const geometry = params.force_2d ? { ...sourceGeometry, z: false, m: false } : sourceGeometry;
      const sourceCrs = describeSrs(layer.srs);
      // CSV lat/lon columns: GDAL types them as points without a CRS, and their range is checked.
      const lonLatColumns = format === 'csv' && !params.wkt_column && declared === gdal.wkbPoint;
      // Any source without a CRS, whatever its format, is read as EPSG:4326 and says so.
      const crsAssumed = sourceCrs === null;
      if (crsAssumed)
        warnings.push(
          `${params.container_name}/${params.blob_name} has no CRS: its coordinates were taken as ${ASSUMED_CRS} (longitude, latitude)`,
        );
      const staging = stagingTable(params.schema, ctx.jobId);
      await createStagingTable(ctx.db, staging, columns, geometry).catch(async (err: unknown) => {
        await dropJobTables(ctx.db, staging);
        throw err;
      });
      return {
        started_at: startedAt,
        source: {
          container: params.container_name,
          blob: params.blob_name,
          size: src.size,
          etag: src.etag,
          format,
          driver: src.driver,
          layer: layerName,
        },
        staging,
        columns,
        geometry,
        source_dimensions: dimensionsOf(sourceGeometry),
        source_crs: sourceCrs,
        crs_assumed: crsAssumed,
        assumed_crs: crsAssumed ? ASSUMED_CRS : null,
        encoding,
        lon_lat_columns: lonLatColumns,
        feature_count: plan.featureCount,
        chunk_size: chunkSize,
        ranges: plan.ranges,
        warnings,
      };
    } finally {
      src.close();
    }
  },
});
