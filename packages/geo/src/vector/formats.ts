/** Vector formats read by the ingest, by file extension. */
export const VECTOR_FORMATS = ['geojson', 'json', 'zip', 'shp', 'gpkg', 'csv', 'kml', 'kmz', 'fgb', 'gml'] as const;
export type VectorFormat = (typeof VECTOR_FORMATS)[number];

/** The GDAL driver that reads each format (`zip` is a zipped shapefile). */
export const DRIVER_OF: Record<VectorFormat, readonly string[]> = {
  geojson: ['GeoJSON'],
  json: ['GeoJSON'],
  zip: ['ESRI Shapefile'],
  shp: ['ESRI Shapefile'],
  gpkg: ['GPKG'],
  csv: ['CSV'],
  kml: ['LIBKML', 'KML'],
  kmz: ['LIBKML', 'KML'],
  fgb: ['FlatGeobuf'],
  gml: ['GML'],
};

/** Lower-cased extension of a blob name without the dot (`a/b.GeoJSON` -> `geojson`), or null. */
export function extensionOf(name: string): string | null {
  const base = name.split('/').pop() ?? name;
  const dot = base.lastIndexOf('.');
  return dot > 0 ? base.slice(dot + 1).toLowerCase() : null;
}

/** Normalises a given or inferred extension to a supported format, or null when unsupported. */
export function formatOf(extension: string | null | undefined): VectorFormat | null {
  if (!extension) return null;
  const ext = extension.replace(/^\./, '').toLowerCase();
  if (ext === 'flatgeobuf') return 'fgb';
  return (VECTOR_FORMATS as readonly string[]).includes(ext) ? (ext as VectorFormat) : null;
}
