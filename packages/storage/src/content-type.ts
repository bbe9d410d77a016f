const TYPES: Record<string, string> = {
  '.tif': 'image/tiff',
  '.tiff': 'image/tiff',
  '.jpg': 'image/jpeg',
  '.jpeg': 'image/jpeg',
  '.png': 'image/png',
  '.gif': 'image/gif',
  '.bmp': 'image/bmp',
  '.webp': 'image/webp',
  '.json': 'application/json',
  '.geojson': 'application/geo+json',
  '.kml': 'application/vnd.google-earth.kml+xml',
  '.kmz': 'application/vnd.google-earth.kmz',
  '.gpkg': 'application/geopackage+sqlite3',
  '.shp': 'application/vnd.shp',
  '.shx': 'application/vnd.shx',
  '.dbf': 'application/vnd.dbf',
  '.prj': 'text/plain',
  '.csv': 'text/csv',
  '.txt': 'text/plain',
  '.md': 'text/markdown',
  '.xml': 'application/xml',
  '.html': 'text/html',
  '.zip': 'application/zip',
  '.gz': 'application/gzip',
  '.parquet': 'application/vnd.apache.parquet',
  '.fgb': 'application/vnd.flatgeobuf',
  '.nc': 'application/x-netcdf',
  '.pdf': 'application/pdf',
  '.vrt': 'application/xml',
  '.las': 'application/vnd.las',
  '.laz': 'application/vnd.laszip',
};

/** Lower-cased extension of a blob's last path segment with its dot (`.tif`), or '' when none. */
export function blobExtension(name: string): string {
  const base = name.slice(name.lastIndexOf('/') + 1);
  const dot = base.lastIndexOf('.');
  // A leading dot is a hidden file's name, not an extension (`.env` has none).
  return dot > 0 ? base.slice(dot).toLowerCase() : '';
}

/** Content type for a file name by its extension; `application/octet-stream` when unknown. */
export function guessContentType(name: string): string {
  return TYPES[blobExtension(name)] ?? 'application/octet-stream';
}
