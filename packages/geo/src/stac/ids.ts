import { createHash } from 'node:crypto';

/**
 * Stable, readable item ids. The same input always gives the same id, so re-cataloguing a
 * blob or a table updates its item instead of adding a second one.
 */
function sanitise(part: string): string {
  return part
    .normalize('NFKD')
    .replace(/[\u0300-\u036f]/g, '')
    .replace(/[^A-Za-z0-9._-]+/g, '-')
    .replace(/-{2,}/g, '-')
    .replace(/^[-.]+|[-.]+$/g, '');
}

/** Container names and path segments that {@link rasterItemId} writes as they are: no `-`, nothing replaced. */
const PLAIN_CONTAINER = /^[a-z0-9]+$/;
const PLAIN_SEGMENT = /^[A-Za-z0-9._]+$/;

/**
 * The item id of a blob: unique per (container, blob path) and the same on every run.
 *
 * `bronze` + `dem/x.tif` → `bronze-dem-x.tif`: the container and the path's segments joined by
 * `-`, when none of them holds a `-` or a character outside `[A-Za-z0-9._]` (such an id reads back
 * to exactly one blob). Any other name gets the readable form (anything outside
 * `[A-Za-z0-9._-]` becomes `-`) plus a 12-hex digest of the exact container and path:
 * `dem-x.tif` → `bronze-dem-x.tif-<digest>`, `a b.tif` and `a-b.tif` → two ids. The extension
 * stays so that `a.tif` and `a.tiff` differ.
 */
export function rasterItemId(container: string, blobPath: string): string {
  const segments = blobPath.split('/');
  const readable = `${sanitise(container)}-${segments.map(sanitise).filter(Boolean).join('-')}`;
  if (PLAIN_CONTAINER.test(container) && segments.every((s) => PLAIN_SEGMENT.test(s))) return readable;
  const digest = createHash('sha256').update(`${container}/${blobPath}`).digest('hex').slice(0, 12);
  return `${readable.slice(0, 200)}-${digest}`;
}

/** `geo` + `roads` → `postgis-geo-roads`. */
export function vectorItemId(schema: string, table: string): string {
  return `postgis-${sanitise(schema)}-${sanitise(table)}`;
}

/** Collection ids: 1-64 characters, starting with a letter or digit; `[A-Za-z0-9._-]`. */
export const COLLECTION_ID_PATTERN = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;
