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

/**
 * `bronze` + `dem/Elev 2020.tif` → `bronze-dem-Elev-2020.tif`. Path separators and anything
 * outside `[A-Za-z0-9._-]` become `-`; the extension stays so that `a.tif` and `a.tiff` differ.
 */
export function rasterItemId(container: string, blobPath: string): string {
  return `${sanitise(container)}-${blobPath.split('/').map(sanitise).filter(Boolean).join('-')}`;
}

/** `geo` + `roads` → `postgis-geo-roads`. */
export function vectorItemId(schema: string, table: string): string {
  return `postgis-${sanitise(schema)}-${sanitise(table)}`;
}

/** Collection ids: 1-64 characters, starting with a letter or digit; `[A-Za-z0-9._-]`. */
export const COLLECTION_ID_PATTERN = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;
