import { describe, expect, it } from 'vitest';
import { batchSizeFor, parameters } from '../src/parameters.ts';

describe('batchSizeFor', () => {
  it('keeps a given batch_size, else splits the listing into about 8 tasks of 25-500 rasters', () => {
    expect(batchSizeFor(1, 1000)).toBe(1);
    expect(batchSizeFor(100, 1000)).toBe(100);
    expect(batchSizeFor(null, 1000)).toBe(125);
    expect(batchSizeFor(null, 10)).toBe(25);
    expect(batchSizeFor(null, 201)).toBe(26);
    expect(batchSizeFor(null, 100_000)).toBe(500);
    expect(parameters.parse({ container_name: 'bronze' }).batch_size).toBeNull();
    expect(parameters.safeParse({ container_name: 'bronze', batch_size: 501 }).success).toBe(false);
  });
});
