import gdal from 'gdal-async';
import { classifyGdalError } from '../gdal/errors.ts';
import { crsShortName, isEngineeringCrs } from '../raster/crs.ts';
import { effectiveGeoTransform, gcpCrs } from '../raster/warp-grid.ts';
import { StacError } from './errors.ts';
import { footprintWgs84, outlineRing, wgs84Transform, type Wgs84Transform } from './footprint.ts';
import { rasterBands } from './raster-bands.ts';
import { STAC_EXTENSIONS } from './validate.ts';
import type { StacItem } from './types.ts';

export const GEOTIFF = 'image/tiff; application=geotiff';
export const COG = 'image/tiff; application=geotiff; profile=cloud-optimized';

/** Where a raster lives and what storage says about it. */
export interface RasterSource {
  /** What GDAL opens: `/vsiaz/<container>/<blob>` (configure GDAL with `gdalConfigFor`) or a local path. */
  gdalPath: string;
  /** Stable asset URL (`blobUrl(container, blob)`): never a SAS URL. */
  href: string;
  /** Blob size in bytes (`file:size`). */
  size: number;
  /** Blob last-modified: the item datetime when the file carries no TIFFTAG_DATETIME. */
  lastModified: Date;
  /** `file:checksum` (multihash hex, see `multihashSha256`), when computed. */
  checksum?: string;
  /** The file as users know it, for messages (`container/blob`); default: `gdalPath`. */
  label?: string;
  /**
   * The file's CRS definition as text (`geoTiffKeys(bytes).crs` of a self-contained GeoTIFF): a
   * raster whose key was seen before reuses the CRS GDAL built then, instead of building it again.
   * Only for bytes GDAL reads alone (no .aux.xml or world file beside them): then the GeoKeys are
   * all GDAL builds the CRS from (with its GTIFF_* options, which CoreMachine never changes).
   */
  crsKey?: string;
  /**
   * With `crsKey`: no band has a unit of its own (`!geoTiffKeys(bytes).gdalMetadata`), so GDAL
   * reports the CRS's vertical unit (or none) for every band, which the cache then also serves
   * (GDAL would otherwise build the CRS anyway to answer the band unit).
   */
  bandUnitsFromCrs?: boolean;
}

export interface RasterItemOptions {
  id: string;
  collection: string;
  /** Extra item properties (e.g. `coremachine:container`). */
  properties?: Record<string, unknown>;
  /** Compute raster:bands statistics and histogram (default true). */
  statistics?: boolean;
}

/** `2020:05:17 10:30:00` (TIFF) → `2020-05-17T10:30:00Z`; null if absent or malformed. */
export function tiffDatetime(value: unknown): string | null {
  const m = typeof value === 'string' ? /^(\d{4}):(\d{2}):(\d{2}) (\d{2}):(\d{2}):(\d{2})/.exec(value.trim()) : null;
  if (!m) return null;
  const iso = `${m[1]}-${m[2]}-${m[3]}T${m[4]}:${m[5]}:${m[6]}Z`;
  return Number.isNaN(Date.parse(iso)) ? null : iso;
}

/** True when the file is a GeoTIFF laid out as a COG (GDAL reports `LAYOUT=COG` for the COG ghost header) and tiled. */
export function isCogLayout(ds: gdal.Dataset): boolean {
  if (ds.driver.description !== 'GTiff') return false;
  const structure = (ds.getMetadata('IMAGE_STRUCTURE') ?? {}) as Record<string, string>;
  const first = ds.bands.get(1);
  const tiled = first.blockSize.x < ds.rasterSize.x || first.blockSize.x === first.blockSize.y;
  return structure.LAYOUT === 'COG' && tiled;
}

/** WKT2 of a CRS: GDAL exports WKT1 unless OSR_WKT_FORMAT says otherwise. */
function toWkt2(srs: gdal.SpatialReference): string | null {
  const previous = gdal.config.get('OSR_WKT_FORMAT');
  gdal.config.set('OSR_WKT_FORMAT', 'WKT2_2019');
  try {
    return srs.toWKT();
  } catch {
    return null;
  } finally {
    gdal.config.set('OSR_WKT_FORMAT', previous);
  }
}

function crsFields(srs: gdal.SpatialReference): { 'proj:code': string | null; 'proj:wkt2': string | null } {
  const name = srs.getAuthorityName(null);
  const code = srs.getAuthorityCode(null);
  return { 'proj:code': name && code ? `${name}:${code}` : null, 'proj:wkt2': toWkt2(srs) };
}

/** What an item needs of a CRS, worked out once per CRS. */
interface CrsInfo {
  srs: gdal.SpatialReference;
  engineering: boolean;
  fields: { 'proj:code': string | null; 'proj:wkt2': string | null };
  /** The unit GDAL gives bands without a unit of their own ('' for none), once a raster told it. */
  bandUnit?: string;
  /** To WGS84, once a footprint needed it. */
  toWgs84?: Wgs84Transform;
}

/** By `RasterSource.crsKey`; a catalogue holds a handful of CRSs, the cap bounds the odd one. */
const crsByKey = new Map<string, CrsInfo>();
const CRS_CACHE_MAX = 256;

function crsInfo(srs: gdal.SpatialReference): CrsInfo {
  const engineering = isEngineeringCrs(srs);
  return { srs, engineering, fields: engineering ? { 'proj:code': null, 'proj:wkt2': null } : crsFields(srs) };
}

/** The dataset's CRS (null: none) and geotransform; the CRS from the cache when the key was seen. */
async function crsAndGeoTransform(
  ds: gdal.Dataset,
  key: string | undefined,
): Promise<[CrsInfo | null, number[] | null]> {
  const hit = key === undefined ? undefined : crsByKey.get(key);
  if (hit) return [hit, (await ds.geoTransformAsync) ?? effectiveGeoTransform(ds, hit.srs)];
  // Async getters: building the CRS from the GeoTIFF keys (a PROJ database lookup) is the
  // costliest step of a small raster, and runs off the event loop this way.
  const [srs, gt] = await Promise.all([ds.srsAsync, ds.geoTransformAsync]);
  if (!srs) {
    // Georeferenced by ground control points (a satellite scene as delivered): the GCPs' CRS,
    // and the north-up grid GDAL fits to them for the footprint.
    const gcp = gcpCrs(ds);
    return gcp ? [crsInfo(gcp), effectiveGeoTransform(ds, gcp)] : [null, gt];
  }
  const info = crsInfo(srs);
  if (key !== undefined) {
    if (crsByKey.size >= CRS_CACHE_MAX) crsByKey.clear();
    crsByKey.set(key, info);
  }
  return [info, gt];
}

/**
 * Builds a STAC 1.0.0 item for one raster, read in place through GDAL: WGS84 footprint and
 * bbox (antimeridian-safe), projection v2.0.0, raster v1.1.0 bands with statistics from a
 * decimated read, file v2.1.0 size and checksum. The datetime is the file's TIFFTAG_DATETIME,
 * else the blob's last-modified: re-cataloguing the same bytes gives the same item.
 * @throws StacError RASTER_NO_CRS / RASTER_NO_GEOTRANSFORM when the file is not georeferenced.
 */
export async function buildRasterItem(source: RasterSource, options: RasterItemOptions): Promise<StacItem> {
  const ds = await gdal.openAsync(source.gdalPath);
  const label = source.label ?? source.gdalPath;
  try {
    const [crs, gt] = await crsAndGeoTransform(ds, source.crsKey);
    if (!crs)
      throw new StacError(
        'RASTER_NO_CRS',
        `${label} has no CRS, so it cannot be placed on a map: assign one (gdal_edit -a_srs) and catalogue it again`,
      );
    const srs = crs.srs;
    if (crs.engineering)
      throw new StacError(
        'CRS_NOT_GEOREFERENCED',
        `${label} has a local engineering CRS (${crsShortName(srs)}) with no relation to the Earth, so it cannot be placed on a map: assign its real CRS (gdal_edit -a_srs), or convert it with process_raster and input_crs, and catalogue it again`,
      );
    if (!gt) throw new StacError('RASTER_NO_GEOTRANSFORM', `${label} has no geotransform, so its footprint is unknown`);
    const { x: width, y: height } = ds.rasterSize;
    const ring = outlineRing(gt, width, height);
    let footprint: ReturnType<typeof footprintWgs84>;
    try {
      footprint = footprintWgs84(ring, srs, (crs.toWgs84 ??= wgs84Transform(srs)));
    } catch (err) {
      const c = classifyGdalError(err);
      if (c.kind !== 'crs') throw err;
      throw new StacError(
        'CRS_TRANSFORM_FAILED',
        `${label}: PROJ cannot transform its CRS ${crsShortName(srs)} to WGS 84 (${c.message.slice(0, 200)})`,
      );
    }
    const { geometry, bbox } = footprint;
    const xs = [gt[0]!, gt[0]! + width * gt[1]!, gt[0]! + height * gt[2]!, gt[0]! + width * gt[1]! + height * gt[2]!];
    const ys = [gt[3]!, gt[3]! + width * gt[4]!, gt[3]! + height * gt[5]!, gt[3]! + width * gt[4]! + height * gt[5]!];
    const cog = isCogLayout(ds);
    const datetime =
      tiffDatetime((ds.getMetadata() as Record<string, string> | null)?.TIFFTAG_DATETIME) ??
      source.lastModified.toISOString();
    const unitsFromCrs = source.crsKey !== undefined && source.bandUnitsFromCrs === true;
    const bands = await rasterBands(ds, options.statistics ?? true, unitsFromCrs ? crs.bandUnit : undefined);
    if (unitsFromCrs && crs.bandUnit === undefined && bands.length) crs.bandUnit = bands[0]!.unit ?? '';
    const classified = bands.some((b) => b['classification:classes']);
    return {
      type: 'Feature',
      stac_version: '1.0.0',
      stac_extensions: [
        STAC_EXTENSIONS.projection,
        STAC_EXTENSIONS.raster,
        STAC_EXTENSIONS.file,
        ...(classified ? [STAC_EXTENSIONS.classification] : []),
      ],
      id: options.id,
      collection: options.collection,
      geometry,
      bbox,
      properties: {
        datetime,
        ...crs.fields,
        'proj:shape': [height, width],
        // A GCP-georeferenced file has no affine transform of its own to report.
        ...(ds.getGCPs().length && !ds.geoTransform
          ? {}
          : { 'proj:transform': [gt[1]!, gt[2]!, gt[0]!, gt[4]!, gt[5]!, gt[3]!, 0, 0, 1] }),
        'proj:bbox': [Math.min(...xs), Math.min(...ys), Math.max(...xs), Math.max(...ys)],
        ...options.properties,
      },
      links: [],
      assets: {
        data: {
          href: source.href,
          type: cog ? COG : GEOTIFF,
          title: source.href.split('/').pop() ?? 'data',
          roles: ['data'],
          'raster:bands': bands,
          'file:size': source.size,
          ...(source.checksum ? { 'file:checksum': source.checksum } : {}),
        },
      },
    };
  } finally {
    ds.close();
  }
}
