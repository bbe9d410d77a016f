import { describe, expect, it } from 'vitest';
import { rasterItemId, vectorItemId } from './ids.ts';

describe('item ids', () => {
  it('are readable, stable and keep the extension', () => {
    expect(rasterItemId('bronze', 'dem/Elev 2020.tif')).toBe('bronze-dem-Elev-2020.tif');
    expect(rasterItemId('bronze', 'dem/Elev 2020.tif')).toBe(rasterItemId('bronze', 'dem/Elev 2020.tif'));
    expect(rasterItemId('bronze', 'a.tif')).not.toBe(rasterItemId('bronze', 'a.tiff'));
    expect(rasterItemId('silver', 'x//y/../z?.tif')).toBe('silver-x-y-z-.tif');
    expect(rasterItemId('bronze', 'café/é.tif')).toBe('bronze-cafe-e.tif');
    expect(vectorItemId('geo', 'roads')).toBe('postgis-geo-roads');
  });
});
