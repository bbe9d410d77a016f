import type { StacItem } from './types.ts';

/** What the STAC jobs need from the machine: where the STAC store lives. */
export interface StacServices {
  /** PostgreSQL schema of the STAC store (default `stac`); tests use their own. */
  schema: string;
  /**
   * Schema whose tables the server publishes through OGC API Features at
   * /features/collections/{table} (default `geo`): vector items of those tables link to it.
   */
  featuresSchema?: string;
}

declare module '@coremachine/core-machine' {
  interface Services {
    stac: StacServices;
  }
}

/** Adds the links a served item carries (self, parent, collection, root), from the API base URL. */
export function withStacLinks(item: StacItem, base: string): StacItem {
  const col = `${base}/collections/${encodeURIComponent(item.collection)}`;
  const assets = Object.fromEntries(
    Object.entries(item.assets).map(([k, a]) => [
      k,
      a.href.startsWith('/') ? { ...a, href: new URL(a.href, base).href } : a,
    ]),
  );
  return {
    ...item,
    assets,
    links: [
      { rel: 'self', href: `${col}/items/${encodeURIComponent(item.id)}`, type: 'application/geo+json' },
      { rel: 'parent', href: col, type: 'application/json' },
      { rel: 'collection', href: col, type: 'application/json' },
      { rel: 'root', href: base, type: 'application/json' },
    ],
  };
}
