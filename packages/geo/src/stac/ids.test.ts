import { describe, expect, it } from 'vitest';
import { rasterItemId, vectorItemId } from './ids.ts';

describe('item ids', () => {
  it('are readable and stable, and keep the extension', () => {
    expect(rasterItemId('bronze', 'dem/x.tif')).toBe('bronze-dem-x.tif');
    expect(rasterItemId('bronze', 'dem/Elev 2020.tif')).toMatch(/^bronze-dem-Elev-2020\.tif-[0-9a-f]{12}$/);
    expect(rasterItemId('bronze', 'dem/Elev 2020.tif')).toBe(rasterItemId('bronze', 'dem/Elev 2020.tif'));
    expect(rasterItemId('bronze', 'a.tif')).not.toBe(rasterItemId('bronze', 'a.tiff'));
    expect(rasterItemId('silver', 'x//y/../z?.tif')).toMatch(/^silver-x-y-z-\.tif-[0-9a-f]{12}$/);
    expect(rasterItemId('bronze', 'café/é.tif')).toMatch(/^bronze-cafe-e\.tif-[0-9a-f]{12}$/);
    expect(vectorItemId('geo', 'roads')).toBe('postgis-geo-roads');
  });

  it('never give two blobs one id', () => {
    const pairs: Array<[[string, string], [string, string]]> = [
      [
        ['bronze', 'dem/x.tif'],
        ['bronze', 'dem-x.tif'],
      ],
      [
        ['bronze', 'a b.tif'],
        ['bronze', 'a-b.tif'],
      ],
      [
        ['a-b', 'c.tif'],
        ['a', 'b/c.tif'],
      ],
      [
        ['bronze', 'x//y.tif'],
        ['bronze', 'x/y.tif'],
      ],
      [
        ['bronze', 'é.tif'],
        ['bronze', 'e.tif'],
      ],
    ];
    for (const [a, b] of pairs) expect(rasterItemId(...a)).not.toBe(rasterItemId(...b));
    // Over many names that sanitise alike, every id is distinct.
    const names = ['a b', 'a-b', 'a_b', 'a/b', 'a  b', 'a--b', 'a/-b', 'a-/b', 'a.b', 'a//b'].flatMap((n) => [
      `${n}.tif`,
      `dem/${n}.tif`,
      `dem-${n}.tif`,
    ]);
    const ids = new Set(names.map((n) => rasterItemId('bronze', n)));
    expect(ids.size).toBe(names.length);
  });
});
