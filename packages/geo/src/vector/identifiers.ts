import { registerErrorCodes } from '@coremachine/core-machine';
import { z } from 'zod';

/** A plain lower-case SQL identifier, as accepted for table and schema names. */
export const SQL_IDENTIFIER_PATTERN = /^[a-z_][a-z0-9_]*$/;
export const MAX_IDENTIFIER_BYTES = 63;

/**
 * Zod schema for a table or schema name: lower-case letters, digits and `_`, starting with a
 * letter or `_`, at most 63 bytes (PostgreSQL's limit; longer names would be truncated
 * silently). Anything else (quotes, spaces, SQL) is refused before any SQL is built.
 *
 * @example
 *   z.object({ table_name: sqlIdentifier('table_name') })
 */
export function sqlIdentifier(field: string) {
  return z
    .string()
    .max(MAX_IDENTIFIER_BYTES, {
      error: (iss) =>
        `${field} must be at most ${MAX_IDENTIFIER_BYTES} bytes, got ${String((iss.input as string).length)}`,
    })
    .regex(SQL_IDENTIFIER_PATTERN, {
      error: (iss) =>
        `${field} must match ${SQL_IDENTIFIER_PATTERN.source} (lower-case letters, digits, _), got ${JSON.stringify(iss.input)}`,
    })
    .refine((v) => Buffer.byteLength(v) <= MAX_IDENTIFIER_BYTES, {
      error: `${field} must be at most ${MAX_IDENTIFIER_BYTES} bytes`,
    });
}

/**
 * Turns source field names into distinct, plain PostgreSQL column names: accents stripped,
 * lower case, anything but `[a-z0-9_]` replaced by `_`, a leading digit prefixed with `_`,
 * truncated to 63 bytes, and suffixed `_2`, `_3`, ... when two names collide or a name is
 * one of `reserved` (the loader's own columns).
 *
 * @example
 *   launderColumnNames(['Name', 'Surface (m²)', 'name'], ['fid', 'geom'])
 *   // ['name', 'surface_m2', 'name_2']
 */
export function launderColumnNames(names: readonly string[], reserved: readonly string[] = []): string[] {
  const taken = new Set(reserved.map((r) => r.toLowerCase()));
  return names.map((raw) => {
    let base = raw
      .normalize('NFKD')
      .replace(/[\u0300-\u036f]/g, '')
      .toLowerCase()
      .replace(/[^a-z0-9_]+/g, '_')
      .replace(/^_+|_+$/g, '');
    if (base === '') base = 'field';
    if (/^[0-9]/.test(base)) base = `_${base}`;
    base = base.slice(0, MAX_IDENTIFIER_BYTES);
    let name = base;
    for (let i = 2; taken.has(name); i++) {
      const suffix = `_${i}`;
      name = base.slice(0, MAX_IDENTIFIER_BYTES - suffix.length) + suffix;
    }
    taken.add(name);
    return name;
  });
}

/**
 * Pairs of source field names that a load through GDAL's PostgreSQL writer cannot keep apart:
 * OGR matches field names without regard to case (`Name` and `name` become one column), and
 * PostgreSQL truncates identifiers to 63 bytes (two long names sharing their first 63 bytes
 * become one). Empty when every name survives.
 */
export function collidingFieldNames(names: readonly string[]): Array<[string, string]> {
  const seen = new Map<string, string>();
  const pairs: Array<[string, string]> = [];
  for (const name of names) {
    const key = Buffer.from(name.toLowerCase()).subarray(0, MAX_IDENTIFIER_BYTES).toString();
    const first = seen.get(key);
    if (first !== undefined) pairs.push([first, name]);
    else seen.set(key, name);
  }
  return pairs;
}

registerErrorCodes({
  FIELD_NAMES_COLLIDE: {
    meaning: 'two source field names differ only in case or beyond 63 bytes, and cannot both be loaded',
    permanent: true,
    httpStatus: 422,
  },
});
