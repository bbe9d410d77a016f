import { z } from 'zod';
import { blobExtension } from './content-type.ts';
import { isoInstantSchema } from './iso-instant.ts';
import { blobPrefixSchema } from './names.ts';

const MB = 1024 * 1024;

/** `no_extension` selects blobs whose name has no extension. */
export const NO_EXTENSION = 'no_extension';

const extensionSchema = z
  .string()
  .trim()
  .min(1, 'extension is empty')
  .transform((v) => (v.toLowerCase() === NO_EXTENSION ? NO_EXTENSION : (v.startsWith('.') ? v : `.${v}`).toLowerCase()))
  .refine((v) => v === NO_EXTENSION || /^\.[^./\\\s]+$/.test(v), {
    message: 'extension must look like ".tif" (one dot, no "/" or spaces)',
  });

/**
 * Listing filter shared by the container jobs. Extensions are normalised (`TIF` -> `.tif`),
 * sizes are MiB, dates are ISO 8601 instants normalised to UTC (`...Z`). Unknown keys are
 * rejected so a misspelt filter cannot silently select everything.
 */
export const blobFilterSchema = z
  .strictObject({
    prefix: blobPrefixSchema
      .optional()
      .describe('Only blobs under this prefix (listed server-side); no `..`, `//` or control characters'),
    extensions: z
      .array(extensionSchema)
      .min(1, 'extensions must list at least one extension (or be omitted)')
      .transform((a) => [...new Set(a)])
      .optional()
      .describe('Case-insensitive; `TIF` and `.tif` both mean `.tif`; `no_extension` selects names without one'),
    min_size_mb: z.number().nonnegative().optional().describe('Smallest size in MiB, inclusive'),
    max_size_mb: z.number().nonnegative().optional().describe('Largest size in MiB, inclusive; at least min_size_mb'),
    modified_after: isoInstantSchema
      .optional()
      .describe('ISO 8601 date or date-time (no offset = UTC); only blobs modified strictly after it'),
    modified_before: isoInstantSchema
      .optional()
      .describe('ISO 8601 date or date-time (no offset = UTC); only blobs modified strictly before it'),
  })
  .superRefine((f, ctx) => {
    if (f.min_size_mb !== undefined && f.max_size_mb !== undefined && f.min_size_mb > f.max_size_mb) {
      ctx.addIssue({
        code: 'custom',
        path: ['max_size_mb'],
        message: `max_size_mb (${f.max_size_mb}) is smaller than min_size_mb (${f.min_size_mb})`,
      });
    }
    if (f.modified_after && f.modified_before && f.modified_after >= f.modified_before) {
      ctx.addIssue({
        code: 'custom',
        path: ['modified_before'],
        message: `modified_before (${f.modified_before}) is not after modified_after (${f.modified_after})`,
      });
    }
  });

export type BlobFilter = z.output<typeof blobFilterSchema>;
export type BlobFilterInput = z.input<typeof blobFilterSchema>;

export interface FilterableEntry {
  name: string;
  size: number;
  lastModified: Date;
}

/**
 * A predicate for a parsed filter: prefix (also applied server-side by the listing), extension
 * (case-insensitive), size in MiB (inclusive bounds), modification time (strictly after
 * `modified_after`, strictly before `modified_before`).
 */
export function compileBlobFilter(filter: BlobFilter | undefined): (entry: FilterableEntry) => boolean {
  if (!filter) return () => true;
  const exts = filter.extensions ? new Set(filter.extensions) : null;
  const after = filter.modified_after ? Date.parse(filter.modified_after) : null;
  const before = filter.modified_before ? Date.parse(filter.modified_before) : null;
  const minBytes = filter.min_size_mb !== undefined ? filter.min_size_mb * MB : null;
  const maxBytes = filter.max_size_mb !== undefined ? filter.max_size_mb * MB : null;
  return (e) => {
    if (filter.prefix && !e.name.startsWith(filter.prefix)) return false;
    if (exts && !exts.has(blobExtension(e.name) || NO_EXTENSION)) return false;
    if (minBytes !== null && e.size < minBytes) return false;
    if (maxBytes !== null && e.size > maxBytes) return false;
    const t = e.lastModified.getTime();
    if (after !== null && !(t > after)) return false;
    if (before !== null && !(t < before)) return false;
    return true;
  };
}
