import { describe, expect, it } from 'vitest';
import { integerStatistics, statistics } from './raster-bands.ts';

/** Deterministic pseudo-random values in [lo, hi]. */
function values(n: number, lo: number, hi: number, seed = 7): number[] {
  let x = seed;
  return Array.from({ length: n }, () => {
    x = (x * 1103515245 + 12345) % 2147483648;
    return lo + (x % (hi - lo + 1));
  });
}

describe('integerStatistics', () => {
  const cases: Array<[string, (v: number[]) => Uint8Array | Int8Array | Uint16Array | Int16Array, number, number]> = [
    ['Byte', (v) => Uint8Array.from(v), 0, 255],
    ['Int8', (v) => Int8Array.from(v), -128, 127],
    ['UInt16', (v) => Uint16Array.from(v), 0, 65535],
    ['Int16', (v) => Int16Array.from(v), -32768, 32767],
  ];
  for (const [type, make, lo, hi] of cases) {
    it(`gives exactly the figures of the general pass for ${type}, with and without nodata`, () => {
      const data = make(values(200_000, lo, hi));
      expect(integerStatistics(data, null)).toEqual(statistics(data, null));
      expect(integerStatistics(data, data[0]!)).toEqual(statistics(data, data[0]!));
      expect(integerStatistics(data, 1.5)).toEqual(statistics(data, 1.5));
      // A length that is not a multiple of 4 (the byte counter takes 4 values at a time).
      const odd = make(values(10_003, lo, hi));
      expect(integerStatistics(odd, null)).toEqual(statistics(odd, null));
      const narrow = make(values(10_000, Math.max(lo, 3), Math.max(lo, 3) + 9));
      expect(integerStatistics(narrow, null)).toEqual(statistics(narrow, null));
    });
  }

  it('returns nothing when every value is nodata, and one bucket for a constant raster', () => {
    expect(integerStatistics(new Uint8Array(100).fill(5), 5)).toEqual({});
    const constant = integerStatistics(new Uint16Array(100).fill(9), null);
    expect(constant).toEqual(statistics(new Uint16Array(100).fill(9), null));
    expect(constant.histogram!.buckets[0]).toBe(100);
  });
});
