import { z } from 'zod';
import { sqlIdentifier, extensionOf, formatOf, VECTOR_FORMATS } from '@coremachine/geo/vector';
import { blobPathSchema, containerNameSchema } from '@coremachine/storage';

const optionName = (field: string) =>
  z
    .string()
    .min(1, { error: `${field} must not be empty` })
    .max(255, { error: `${field} must be at most 255 characters` });

/**
 * ingest_vector parameters. `table_name` and `schema` are plain SQL identifiers (checked here,
 * at submit, before anything is created); the schema must also be in the machine's allow-list
 * (checked by the prepare stage).
 */
export const parameters = z
  .object({
    blob_name: blobPathSchema.describe('Path of the file in the container'),
    container_name: containerNameSchema.default('bronze').describe('Container holding the file'),
    table_name: sqlIdentifier('table_name')
      .optional()
      .describe(
        'Table to create; anything but a plain identifier is refused at submit. Default: the file name (`Parcels 2024.geojson` gives `parcels_2024`)',
      ),
    schema: sqlIdentifier('schema')
      .default('geo')
      .describe(
        "Schema of the table; must be in the machine's allow-list (`services.vector.schemas`, default `['geo']`)",
      ),
    file_extension: z
      .string()
      .transform((v) => v.replace(/^\./, '').toLowerCase())
      .refine((v) => formatOf(v) !== null, {
        error: (iss) => `file_extension must be one of ${VECTOR_FORMATS.join(', ')}, got ${JSON.stringify(iss.input)}`,
      })
      .optional()
      .describe(
        'Format, when the blob name does not say it: `geojson`, `json`, `zip` (zipped shapefile), `shp`, `gpkg`, `csv`, `kml`, `kmz`, `fgb`, `gml`',
      ),
    chunk_size: z
      .union([
        z.literal('auto'),
        z
          .int({ error: 'chunk_size must be "auto" or an integer' })
          .min(1000, { error: 'chunk_size must be at least 1000' })
          .max(100_000, { error: 'chunk_size must be at most 100000' }),
      ])
      .default('auto')
      .describe(
        'Features per load task; `auto`: up to ~250,000 points or ~100,000 lines/polygons, fewer for wide tables, in equal chunks (one chunk up to 20,000 features)',
      ),
    force_2d: z
      .boolean()
      .default(false)
      .describe(
        "Drop Z and M and load 2D geometries (the result counts `coordinates_flattened`); default: the source's dimensions are kept",
      ),
    overwrite: z
      .boolean()
      .default(false)
      .describe('Replace an existing table; without it an existing table fails the job with `TABLE_EXISTS`'),
    layer: optionName('layer')
      .optional()
      .describe(
        'Layer of a multi-layer source (GeoPackage, KML, GML); several layers and none named: `LAYER_REQUIRED`',
      ),
    shp_name: optionName('shp_name').optional().describe('Shapefile inside a zip holding several'),
    kml_name: optionName('kml_name').optional().describe('KML document inside a KMZ holding several (default doc.kml)'),
    encoding: z
      .string()
      .regex(/^[A-Za-z0-9_.:-]{1,40}$/, {
        error: (iss) => `encoding must be an encoding name like CP1252, got ${JSON.stringify(iss.input)}`,
      })
      .optional()
      .describe('DBF encoding, overriding the `.cpg` (e.g. `CP1252`, `ISO-8859-1`)'),
    lat_name: optionName('lat_name')
      .optional()
      .describe('CSV latitude column, with lon_name (default: lat, latitude, y, ... detected)'),
    lon_name: optionName('lon_name')
      .optional()
      .describe('CSV longitude column, with lat_name (default: lon, lng, longitude, x, ... detected)'),
    wkt_column: optionName('wkt_column')
      .optional()
      .describe(
        'CSV column holding WKT geometries, instead of lat_name/lon_name (default: wkt, geom, geometry, ... detected)',
      ),
  })
  .strict()
  .superRefine((p, ctx) => {
    if (!p.file_extension && !formatOf(extensionOf(p.blob_name))) {
      ctx.addIssue({
        code: 'custom',
        path: ['file_extension'],
        message: `file_extension is required: the extension of blob_name ${JSON.stringify(p.blob_name)} is not one of ${VECTOR_FORMATS.join(', ')}`,
      });
    }
    if ((p.lat_name === undefined) !== (p.lon_name === undefined)) {
      ctx.addIssue({
        code: 'custom',
        path: [p.lat_name === undefined ? 'lat_name' : 'lon_name'],
        message: 'lat_name and lon_name go together: set both or neither',
      });
    }
    if (p.wkt_column !== undefined && p.lat_name !== undefined) {
      ctx.addIssue({
        code: 'custom',
        path: ['wkt_column'],
        message: 'wkt_column excludes lat_name/lon_name: set one or the other',
      });
    }
  });

export type Params = z.output<typeof parameters>;

/**
 * The table a job writes: `table_name`, else the blob's file name without its extension as a
 * plain identifier (lower case, other characters as `_`, `t_` before a leading digit, 63 bytes).
 */
export function targetTableName(params: Pick<Params, 'table_name' | 'blob_name'>): string {
  if (params.table_name) return params.table_name;
  return tableNameFromFile(params.blob_name);
}

export function tableNameFromFile(blobName: string): string {
  const stem = (blobName.split('/').pop() ?? blobName).replace(/\.[^.]*$/, '');
  let name = stem
    .normalize('NFKD')
    .replace(/[\u0300-\u036f]/g, '')
    .toLowerCase()
    .replace(/[^a-z0-9_]+/g, '_')
    .replace(/^_+|_+$/g, '');
  if (!name) name = 'layer';
  if (/^[0-9]/.test(name)) name = `t_${name}`;
  return name.slice(0, 63);
}
