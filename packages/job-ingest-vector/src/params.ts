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
    blob_name: blobPathSchema,
    container_name: containerNameSchema.default('bronze'),
    table_name: sqlIdentifier('table_name'),
    schema: sqlIdentifier('schema').default('geo'),
    /** Format, when the blob name's extension does not say it (`geojson`, `zip`, `gpkg`, ...). */
    file_extension: z
      .string()
      .transform((v) => v.replace(/^\./, '').toLowerCase())
      .refine((v) => formatOf(v) !== null, {
        error: (iss) => `file_extension must be one of ${VECTOR_FORMATS.join(', ')}, got ${JSON.stringify(iss.input)}`,
      })
      .optional(),
    /** Features per load task: `auto`, or 1,000-100,000. */
    chunk_size: z
      .union([
        z.literal('auto'),
        z
          .int({ error: 'chunk_size must be "auto" or an integer' })
          .min(1000, { error: 'chunk_size must be at least 1000' })
          .max(100_000, { error: 'chunk_size must be at most 100000' }),
      ])
      .default('auto'),
    /**
     * Drop Z and M and load 2D geometries. Default: the source's dimensions are kept (a
     * `MultiLineStringZM` column for lines with Z and measures); with it, the result counts the
     * coordinates that lost a dimension (`coordinates_flattened`).
     */
    force_2d: z.boolean().default(false),
    /** Replace an existing table; without it an existing table fails the job (TABLE_EXISTS). */
    overwrite: z.boolean().default(false),
    /** Layer of a multi-layer source (GeoPackage, KML, GML); default: the only layer. */
    layer: optionName('layer').optional(),
    /** Shapefile inside a zip holding several. */
    shp_name: optionName('shp_name').optional(),
    /** KML document inside a KMZ holding several (default doc.kml). */
    kml_name: optionName('kml_name').optional(),
    /** DBF encoding, overriding the .cpg (e.g. CP1252, ISO-8859-1). */
    encoding: z
      .string()
      .regex(/^[A-Za-z0-9_.:-]{1,40}$/, {
        error: (iss) => `encoding must be an encoding name like CP1252, got ${JSON.stringify(iss.input)}`,
      })
      .optional(),
    /** CSV: latitude and longitude columns (both), or a WKT column. Default: common names detected. */
    lat_name: optionName('lat_name').optional(),
    lon_name: optionName('lon_name').optional(),
    wkt_column: optionName('wkt_column').optional(),
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
