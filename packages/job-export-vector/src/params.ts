import { z } from 'zod';
import { COLLECTION_ID_PATTERN } from '@coremachine/geo/stac';
import { sqlIdentifier } from '@coremachine/geo/vector';
import { blobPathSchema, containerNameSchema } from '@coremachine/storage';

/** Output formats: GDAL driver, file extension, media type. */
export const FORMATS = {
  gpkg: { driver: 'GPKG', ext: 'gpkg', type: 'application/geopackage+sqlite3' },
  fgb: { driver: 'FlatGeobuf', ext: 'fgb', type: 'application/vnd.flatgeobuf' },
  geojson: { driver: 'GeoJSON', ext: 'geojson', type: 'application/geo+json' },
} as const;
export type ExportFormat = keyof typeof FORMATS;

const condition = z.strictObject({
  column: sqlIdentifier('where.column'),
  op: z.enum(['=', '<>', '<', '<=', '>', '>=']),
  value: z.union([
    z.string().max(1000),
    z.number().refine(Number.isFinite, 'value must be finite'),
    z.boolean(),
    z.null(),
  ]),
});

/**
 * export_vector parameters: a published table (or the rows of a bbox and attribute conditions)
 * to one file in blob storage. Identifiers are plain SQL identifiers; the schema must be one the
 * machine serves (`services.vector.schemas`), checked by the plan stage.
 */
export const parameters = z
  .strictObject({
    schema: sqlIdentifier('schema').default('geo').describe('Schema of the table'),
    table_name: sqlIdentifier('table_name').describe('The table to export'),
    format: z.enum(['gpkg', 'fgb', 'geojson']).describe('Output format: GeoPackage, FlatGeobuf or GeoJSON'),
    container_name: containerNameSchema.default('silver').describe('Container the file is written to'),
    blob_name: blobPathSchema.optional().describe('Path of the file; default `exports/{schema}/{table}.{ext}`'),
    bbox: z
      .tuple([z.number(), z.number(), z.number(), z.number()])
      .optional()
      .describe('Only rows intersecting west,south,east,north (EPSG:4326; west > east crosses the antimeridian)'),
    where: z
      .array(condition)
      .max(20)
      .optional()
      .describe(
        'Only rows meeting every condition `{ column, op, value }` (`value: null` with = or <> tests for null)',
      ),
    chunk_size: z
      .int()
      .min(1000)
      .max(1_000_000)
      .default(250_000)
      .describe('Rows per export task; the parts are assembled into one file'),
    stac_collection: z
      .string()
      .regex(COLLECTION_ID_PATTERN, 'stac_collection must be 1-64 characters of [A-Za-z0-9._-]')
      .default('exports')
      .describe('STAC collection of the export item (created when missing)'),
  })
  .superRefine((p, ctx) => {
    if (!p.bbox) return;
    const [w, s, e, n] = p.bbox;
    if (s > n) ctx.addIssue({ code: 'custom', path: ['bbox'], message: `bbox south ${s} is above north ${n}` });
    if ([w, e].some((x) => x < -180 || x > 180) || [s, n].some((y) => y < -90 || y > 90))
      ctx.addIssue({ code: 'custom', path: ['bbox'], message: 'bbox must be within -180..180 and -90..90' });
  });

export type Params = z.output<typeof parameters>;

/** The file the job writes. */
export function outputBlob(p: Params): string {
  return p.blob_name ?? `exports/${p.schema}/${p.table_name}.${FORMATS[p.format].ext}`;
}
