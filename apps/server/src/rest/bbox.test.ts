import { describe, expect, it } from 'vitest';
import { bboxParts, bboxSql, parseBbox } from './bbox.ts';
import { HttpError } from './http.ts';

const status = (f: () => unknown) => {
  try {
    f();
    return 200;
  } catch (err) {
    return err instanceof HttpError ? err.status : 500;
  }
};

describe('bbox (shared by /features and /stac/search)', () => {
  it('reads 4 and 6 numbers, strings and arrays', () => {
    expect(parseBbox('1,2,3,4')).toEqual([1, 2, 3, 4]);
    expect(parseBbox([1, 2, 0, 3, 4, 100])).toEqual([1, 2, 3, 4]);
    expect(parseBbox('170,-20,-170,20')).toEqual([170, -20, -170, 20]);
  });

  it('refuses south above north, numbers out of range and malformed values with 400', () => {
    for (const v of ['0,20,10,-20', '0,0,200,10', '0,-91,10,0', '1,2,3', '1,,2,3', 'a,b,c,d', [1, 2, 3, '4']])
      expect(
        status(() => parseBbox(v)),
        JSON.stringify(v),
      ).toBe(400);
  });

  it('splits a bbox crossing the antimeridian in two', () => {
    expect(bboxParts([170, -20, -170, 20])).toEqual([
      [170, -20, 180, 20],
      [-180, -20, -170, 20],
    ]);
    expect(bboxParts([-10, -20, 10, 20])).toEqual([[-10, -20, 10, 20]]);
    const args: unknown[] = [];
    const sql = bboxSql('g', [170, -20, -170, 20], (v) => `$${args.push(v)}`, 3857);
    expect(args).toEqual([170, -20, 180, 20, -180, -20, -170, 20]);
    expect(sql).toContain(' OR ');
    expect(sql).toContain('ST_Transform(ST_MakeEnvelope($1, $2, $3, $4, 4326), 3857)');
  });
});
