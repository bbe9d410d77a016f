import { describe, expect, it } from 'vitest';
import { boundsWarnings } from './bounds.ts';

const codes = (w: ReturnType<typeof boundsWarnings>) => w.map((x) => `${x.severity} ${x.code}`);

describe('boundsWarnings', () => {
  it("a 0..360 global grid is the models' convention, not a wrong CRS", () => {
    expect(codes(boundsWarnings([0, -90, 360, 90], 'EPSG:4326', [1, -1]))).toEqual(['LOW LONGITUDES_0_360']);
    expect(codes(boundsWarnings([-0.125, -90.125, 359.875, 90.125], 'EPSG:4326', [0.25, -0.25]))).toEqual([
      'LOW LONGITUDES_0_360',
    ]);
  });

  it('edges within one pixel of ±180/±90 (cell centres on the limits) are within tolerance', () => {
    expect(boundsWarnings([-180.5, -90.25, 180.5, 90.25], 'EPSG:4326', [0.5, -0.5])).toEqual([]);
  });

  it('coordinates further out mean a wrong CRS', () => {
    expect(codes(boundsWarnings([-190, -90, 190, 90], 'EPSG:4326', [0.5, -0.5]))).toEqual(['HIGH BOUNDS_OUT_OF_RANGE']);
    expect(codes(boundsWarnings([0, -95, 10, 0], 'EPSG:4326', [0.01, -0.01]))).toEqual(['HIGH BOUNDS_OUT_OF_RANGE']);
    // Metres read as degrees: a UTM grid labelled EPSG:4326.
    expect(codes(boundsWarnings([500000, 5000000, 503000, 5003000], 'EPSG:4326', [30, -30]))).toEqual([
      'HIGH BOUNDS_OUT_OF_RANGE',
    ]);
    expect(codes(boundsWarnings([3e6, 5e6, 3.1e6, 5.1e6], 'EPSG:32633', [30, -30]))).toEqual([
      'HIGH BOUNDS_OUT_OF_RANGE',
    ]);
  });
});
