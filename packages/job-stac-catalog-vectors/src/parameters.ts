import { z } from 'zod';
import { COLLECTION_ID_PATTERN } from '@coremachine/geo/stac';

const identifier = (field: string) =>
  z
    .string()
    .regex(
      /^[A-Za-z_][A-Za-z0-9_]*$/,
      `${field} must be a plain SQL identifier: letters, digits and _, starting with a letter or _`,
    )
    .max(63, `${field} is longer than PostgreSQL's 63-byte limit`);

export const parameters = z.strictObject({
  schema: identifier('schema').default('geo').describe('PostgreSQL schema of the table'),
  table_name: identifier('table_name').describe('The PostGIS table to catalogue'),
  collection_id: z
    .string()
    .regex(COLLECTION_ID_PATTERN, 'collection_id must be 1-64 characters of [A-Za-z0-9._-]')
    .default('vectors')
    .describe('Target STAC collection; must exist'),
  source_file: z
    .string()
    .min(1)
    .max(1024)
    .optional()
    .describe('Where the data came from (e.g. `bronze/roads.gpkg`), kept as the `coremachine:source_file` property'),
  datetime: z.iso
    .datetime({ offset: true, message: 'datetime must be an RFC 3339 date-time such as 2024-05-01T00:00:00Z' })
    .optional()
    .describe('Item datetime; overrides the one taken from a time column or from an earlier run'),
});

export type Params = z.output<typeof parameters>;
