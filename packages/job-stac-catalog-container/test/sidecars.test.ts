import { describe, expect, it } from 'vitest';
import { blobStem, StemGroups } from '../src/sidecars.ts';

const shared = (names: string[], truncated = false) => {
  const g = new StemGroups();
  names.forEach((n, i) => g.add(n, i));
  g.end(truncated);
  return names.filter((_, i) => g.shared(i));
};

describe('sidecars', () => {
  it('takes the stem up to the first dot of the file name', () => {
    expect(blobStem('dem/a.tif.aux.xml')).toBe('dem/a');
    expect(blobStem('d.v2/a.tif')).toBe('d.v2/a');
    expect(blobStem('dem/readme')).toBeNull();
  });

  it('flags the blobs that share a stem, over a listing in name order', () => {
    expect(
      shared(['a-b.tif', 'a.tfw', 'a.tif', 'a.tif.aux.xml', 'ab.tif', 'b.tif', 'c.tif', 'c.tif.ovr', 'd', 'd.tif']),
    ).toEqual(['a.tfw', 'a.tif', 'a.tif.aux.xml', 'c.tif', 'c.tif.ovr']);
    expect(shared(['x/a.tif', 'x/a.tif/inner.tif', 'x/a.tif.msk', 'x/b.tif'])).toEqual(['x/a.tif', 'x/a.tif.msk']);
  });

  it('treats the last group of a truncated listing as possibly shared', () => {
    expect(shared(['a.tif', 'b.tif'], true)).toEqual(['b.tif']);
  });
});
