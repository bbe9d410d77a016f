/**
 * Encoding of values for PostgreSQL's COPY text format: tab-separated columns, `\N` for
 * NULL, backslash escapes for the characters that would break a row.
 */
export const COPY_NULL = '\\N';

const SPECIAL = /[\\\t\n\r]/;

/** Escapes a text value for COPY text format. */
export function copyEscape(value: string): string {
  if (!SPECIAL.test(value)) return value;
  return value.replace(/[\\\t\n\r]/g, (c) => (c === '\\' ? '\\\\' : c === '\t' ? '\\t' : c === '\n' ? '\\n' : '\\r'));
}

/** Escapes one element of a PostgreSQL array literal (`{"a","b"}`) and the literal for COPY. */
export function copyArray(values: readonly unknown[]): string {
  const items = values.map((v) =>
    v === null || v === undefined ? 'NULL' : `"${String(v).replace(/["\\]/g, (c) => `\\${c}`)}"`,
  );
  return copyEscape(`{${items.join(',')}}`);
}
