import { describe, expect, it } from 'vitest';
import { blobFilterSchema, compileBlobFilter } from './filter.ts';
import { parseIsoInstant } from './iso-instant.ts';

describe('parseIsoInstant', () => {
  it('parses dates and date-times with and without offsets (naive = UTC)', () => {
    expect(parseIsoInstant('2024-05-01')).toBe(Date.UTC(2024, 4, 1));
    expect(parseIsoInstant('2024-05-01T12:30')).toBe(Date.UTC(2024, 4, 1, 12, 30));
    expect(parseIsoInstant('2024-05-01T12:30:15.250')).toBe(Date.UTC(2024, 4, 1, 12, 30, 15, 250));
    expect(parseIsoInstant('2024-05-01T12:30:00Z')).toBe(Date.UTC(2024, 4, 1, 12, 30));
    expect(parseIsoInstant('2024-05-01T12:30:00+02:00')).toBe(Date.UTC(2024, 4, 1, 10, 30));
    expect(parseIsoInstant('2024-05-01T12:30:00-0530')).toBe(Date.UTC(2024, 4, 1, 18, 0));
  });
  it.each([
    '2024-02-30',
    '2023-02-29',
    '2024-13-01',
    '2024-05-01T24:00',
    'yesterday',
    '05/01/2024',
    '2024-05-01T12:30+25:00',
    '',
  ])('rejects %j', (s) => {
    expect(parseIsoInstant(s)).toBeNull();
  });
  it('accepts a leap day', () => expect(parseIsoInstant('2024-02-29')).toBe(Date.UTC(2024, 1, 29)));
});

describe('blobFilterSchema', () => {
  it('normalises extensions and dates', () => {
    const f = blobFilterSchema.parse({
      extensions: ['TIF', '.Tiff', 'tif', ' .JSON '],
      modified_after: '2024-05-01',
      modified_before: '2024-06-01T02:00:00+02:00',
    });
    expect(f.extensions).toEqual(['.tif', '.tiff', '.json']);
    expect(f.modified_after).toBe('2024-05-01T00:00:00.000Z');
    expect(f.modified_before).toBe('2024-06-01T00:00:00.000Z');
    // Normalised output parses to itself: parameters re-validated from the database stay equal.
    expect(blobFilterSchema.parse(f)).toEqual(f);
  });
  it.each([
    [{ min_size_mb: -1 }, 'min_size_mb'],
    [{ min_size_mb: 5, max_size_mb: 1 }, 'max_size_mb'],
    [{ modified_after: 'not a date' }, 'modified_after'],
    [{ modified_before: '2024-02-30' }, 'modified_before'],
    [{ modified_after: '2024-06-01', modified_before: '2024-05-01' }, 'modified_before'],
    [{ extensions: ['a/b'] }, 'extensions'],
    [{ extensions: [] }, 'extensions'],
    [{ prefix: '../x' }, 'prefix'],
    [{ prefx: 'typo/' }, ''],
  ])('rejects %j naming %s', (input, field) => {
    const r = blobFilterSchema.safeParse(input);
    expect(r.success).toBe(false);
    const issue = r.error!.issues[0]!;
    if (field) expect(issue.path[0]).toBe(field);
    else expect(issue.message).toContain('prefx');
  });
});

describe('compileBlobFilter', () => {
  const d = (s: string) => new Date(s);
  const e = (name: string, mb: number, at = '2024-05-15T00:00:00Z') => ({
    name,
    size: Math.round(mb * 1024 * 1024),
    lastModified: d(at),
  });
  it('applies each criterion', () => {
    const f = (x: object) => compileBlobFilter(blobFilterSchema.parse(x));
    expect(f({ extensions: ['tif'] })(e('a/B.TIF', 1))).toBe(true);
    expect(f({ extensions: ['tif'] })(e('a/b.tiff', 1))).toBe(false);
    expect(f({ extensions: ['no_extension'] })(e('a/README', 1))).toBe(true);
    expect(f({ min_size_mb: 1 })(e('x', 1))).toBe(true);
    expect(f({ min_size_mb: 1 })(e('x', 0.99))).toBe(false);
    expect(f({ max_size_mb: 1 })(e('x', 1.01))).toBe(false);
    expect(f({ modified_after: '2024-05-15' })(e('x', 1, '2024-05-15T00:00:00Z'))).toBe(false);
    expect(f({ modified_after: '2024-05-14' })(e('x', 1))).toBe(true);
    expect(f({ modified_before: '2024-05-16T00:00:00+02:00' })(e('x', 1, '2024-05-15T21:59:59Z'))).toBe(true);
    expect(f({ modified_before: '2024-05-16T00:00:00+02:00' })(e('x', 1, '2024-05-15T22:00:00Z'))).toBe(false);
    expect(f({ prefix: 'a/' })(e('b/x', 1))).toBe(false);
    expect(compileBlobFilter(undefined)(e('x', 1))).toBe(true);
  });
});
