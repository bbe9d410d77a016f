import { describe, expect, it } from 'vitest';
import type { StacItem } from '@coremachine/geo/stac';
import { toProjectionV1, withAlternateAssets } from './stac.ts';

/** An item as a client may POST it: `stac_extensions` is optional in STAC 1.0.0. */
const bareItem = {
  type: 'Feature',
  stac_version: '1.0.0',
  id: 'bare',
  geometry: null,
  properties: { datetime: '2026-12-01T00:00:00Z' },
  links: [],
  assets: { data: { href: 'http://127.0.0.1:10000/devstoreaccount1/silver/dem/x.tif' } },
} as unknown as StacItem;

describe('served items without stac_extensions', () => {
  it('are left as they are by the projection v1.1 rendering', () => {
    expect(toProjectionV1(bareItem)).toBe(bareItem);
  });

  it('get the alternate-assets extension declared when an asset is routed', () => {
    const route = (href: string, base: string) =>
      href.includes('/silver/') ? `${base}/assets/silver/dem/x.tif` : null;
    const served = withAlternateAssets(bareItem, 'http://api/stac', route);
    expect(served.stac_extensions).toEqual([expect.stringContaining('alternate-assets')]);
    expect(
      (served.assets['data'] as { alternate?: { coremachine?: { href: string } } }).alternate?.coremachine?.href,
    ).toBe('http://api/stac/assets/silver/dem/x.tif');
  });
});
