import gdal from 'gdal-async';
import { permanentError } from '@coremachine/core-machine';
import { DRIVER_OF, extensionOf, type VectorFormat } from './formats.ts';

/** How to read a source beyond its path: format-specific options from the job parameters. */
export interface SourceOptions {
  format: VectorFormat;
  /** Layer to read in multi-layer sources (GeoPackage, KML, GML). */
  layer?: string | undefined;
  /** Shapefile to read inside a zip holding several. */
  shpName?: string | undefined;
  /** KML document to read inside a KMZ holding several. */
  kmlName?: string | undefined;
  /** DBF character encoding, overriding the .cpg file (e.g. `CP1252`, `ISO-8859-1`). */
  encoding?: string | undefined;
  /** CSV: geometry columns; when absent, common names are detected. */
  latName?: string | undefined;
  lonName?: string | undefined;
  wktColumn?: string | undefined;
}

/** An opened source layer; `close()` releases the dataset. */
export interface OpenedLayer {
  dataset: gdal.Dataset;
  layer: gdal.Layer;
  /** The GDAL path actually opened (inside the archive for zip/kmz). */
  path: string;
  driver: string;
  close(): void;
}

const LAT_NAMES = ['lat', 'latitude', 'y', 'lat_dd', 'ycoord', 'y_coord', 'point_y'];
const LON_NAMES = ['lon', 'lng', 'long', 'longitude', 'x', 'lon_dd', 'xcoord', 'x_coord', 'point_x'];
const WKT_NAMES = ['wkt', 'geom', 'geometry', 'the_geom', 'shape', 'wkt_geom'];

/** Files under a /vsizip/ directory, recursively, relative to it. */
function listArchive(dir: string, prefix = ''): string[] {
  const out: string[] = [];
  let entries: string[];
  try {
    entries = gdal.fs.readDir(dir + (prefix ? `/${prefix}` : ''));
  } catch {
    return out;
  }
  for (const entry of entries) {
    const rel = prefix ? `${prefix}/${entry}` : entry;
    if (entry.startsWith('__MACOSX')) continue;
    if (/\.[A-Za-z0-9]+$/.test(entry)) out.push(rel);
    else out.push(...listArchive(dir, rel));
  }
  return out;
}

/** Picks the one file of an archive with the wanted extension (or the named one). */
function pickInArchive(archive: string, ext: string, wanted: string | undefined, what: string): string {
  const files = listArchive(archive).filter((f) => extensionOf(f) === ext);
  if (wanted) {
    const hit = files.find(
      (f) => f === wanted || f.split('/').pop() === wanted || f.split('/').pop() === `${wanted}.${ext}`,
    );
    if (!hit)
      throw permanentError(
        `${what.toUpperCase()}_NOT_FOUND`,
        `No ${what} named ${JSON.stringify(wanted)} in the archive; it holds: ${files.join(', ') || 'none'}`,
        { files },
      );
    return hit;
  }
  if (files.length === 0)
    throw permanentError(`${what.toUpperCase()}_NOT_FOUND`, `The archive holds no .${ext} file`, {
      files: listArchive(archive),
    });
  if (files.length > 1 && what === 'shp') {
    throw permanentError(
      'SHP_AMBIGUOUS',
      `The archive holds ${files.length} shapefiles; set shp_name to one of: ${files.join(', ')}`,
      { files },
    );
  }
  // A KMZ holds doc.kml by convention; prefer it when there are several.
  return files.find((f) => f.split('/').pop() === 'doc.kml') ?? files[0]!;
}

function hasDriver(name: string): boolean {
  try {
    return !!gdal.drivers.get(name);
  } catch {
    return false;
  }
}

/** The path GDAL should open: zipped shapefiles and KMZ are read in place through /vsizip/. */
export function innerPath(path: string, options: SourceOptions): string {
  if (options.format === 'zip') {
    const archive = `/vsizip/${path}`;
    return `${archive}/${pickInArchive(archive, 'shp', options.shpName, 'shp')}`;
  }
  if (options.format === 'kmz' && !options.kmlName && hasDriver('LIBKML')) {
    // LIBKML reads a KMZ whole: doc.kml and the layer files it links to.
    return path;
  }
  if (options.format === 'kmz') {
    const archive = `/vsizip/${path}`;
    return `${archive}/${pickInArchive(archive, 'kml', options.kmlName, 'kml')}`;
  }
  return path;
}

function openOptionsFor(options: SourceOptions): string[] {
  if (options.format === 'csv') {
    const opts = ['KEEP_GEOM_COLUMNS=NO', 'AUTODETECT_TYPE=YES', 'EMPTY_STRING_AS_NULL=YES'];
    if (options.wktColumn) opts.push(`GEOM_POSSIBLE_NAMES=${options.wktColumn}`);
    else if (options.latName || options.lonName) {
      opts.push(`X_POSSIBLE_NAMES=${options.lonName ?? 'lon'}`, `Y_POSSIBLE_NAMES=${options.latName ?? 'lat'}`);
    } else {
      opts.push(
        `X_POSSIBLE_NAMES=${LON_NAMES.join(',')}`,
        `Y_POSSIBLE_NAMES=${LAT_NAMES.join(',')}`,
        `GEOM_POSSIBLE_NAMES=${WKT_NAMES.join(',')}`,
      );
    }
    return opts;
  }
  if ((options.format === 'zip' || options.format === 'shp') && options.encoding)
    return [`ENCODING=${options.encoding}`];
  return [];
}

/**
 * Opens a vector source with GDAL, read-only and streamed (GDAL reads `/vsiaz/` blobs and
 * archives in place), and selects its layer: the named one, or the only one. A source with
 * several layers and no `layer` is refused with the list of layer names.
 *
 * @example
 *   const src = await openVectorLayer('/vsiaz/bronze/parcels.gpkg', { format: 'gpkg', layer: 'parcels' });
 *   try { console.log(src.layer.features.count()); } finally { src.close(); }
 */
export async function openVectorLayer(path: string, options: SourceOptions): Promise<OpenedLayer> {
  const target = innerPath(path, options);
  const openOptions = openOptionsFor(options);
  let dataset: gdal.Dataset | undefined;
  let driverName = '';
  const failures: string[] = [];
  for (const name of DRIVER_OF[options.format]) {
    let driver: gdal.Driver;
    try {
      driver = gdal.drivers.get(name);
    } catch {
      continue;
    }
    try {
      // Without open options the open runs off the JavaScript thread (over /vsiaz/ it waits on
      // several HTTP reads; other tasks of the worker go on meanwhile). With options it is
      // synchronous: gdal-async 3.12's Driver.openAsync drops them.
      dataset = openOptions.length ? driver.open(target, 'r', openOptions) : await gdal.openAsync(target, 'r', [name]);
      driverName = name;
      break;
    } catch (err) {
      failures.push(`${name}: ${(err as Error).message}`);
    }
  }
  if (!dataset) {
    throw permanentError(
      'SOURCE_UNREADABLE',
      `GDAL cannot read ${target} as ${options.format}: ${failures.join('; ') || 'no driver available'}`,
      { format: options.format },
    );
  }
  const ds = dataset;
  const close = () => {
    try {
      ds.close();
    } catch {
      /* already closed */
    }
  };
  try {
    const names = ds.layers.map((l) => l.name);
    let layer: gdal.Layer;
    if (options.layer !== undefined) {
      if (!names.includes(options.layer)) {
        throw permanentError(
          'LAYER_NOT_FOUND',
          `No layer ${JSON.stringify(options.layer)} in the source; its layers are: ${names.join(', ')}`,
          { layers: names },
        );
      }
      layer = ds.layers.get(options.layer);
    } else if (names.length === 1) {
      layer = ds.layers.get(0);
    } else {
      throw permanentError(
        'LAYER_REQUIRED',
        `The source has ${names.length} layers; set layer to one of: ${names.join(', ')}`,
        { layers: names },
      );
    }
    if (layer.geomType === gdal.wkbNone) {
      const fields = layer.fields.getNames();
      throw permanentError(
        'NO_GEOMETRY',
        options.format === 'csv'
          ? `No geometry found in the CSV: set lat_name and lon_name, or wkt_column, to one of its columns: ${fields.join(', ')}`
          : `Layer ${JSON.stringify(layer.name)} has no geometry column`,
        { fields },
      );
    }
    return { dataset: ds, layer, path: target, driver: driverName, close };
  } catch (err) {
    close();
    throw err;
  }
}
