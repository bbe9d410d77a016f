import gdal from 'gdal-async';
import { boundsTo4326, rasterBounds, type Bounds } from './bounds.ts';
import { crsLabel } from './crs.ts';
import { nodataToJson, type NodataJson } from './schemas.ts';

export interface RasterDescription {
  crs: string | null;
  bounds: Bounds;
  /** Null when the raster has no CRS. */
  bounds_4326: Bounds | null;
  /** [height, width]. */
  shape: [number, number];
  band_count: number;
  dtype: string;
  nodata: NodataJson;
  /** [width, height] of band 1's blocks. */
  block_size: [number, number];
  /** Decimation factors of band 1's overviews, e.g. [2, 4]. */
  overview_levels: number[];
  /** IMAGE_STRUCTURE COMPRESSION metadata (e.g. `JPEG`), or null. */
  compression: string | null;
  has_color_table: boolean;
}

/** Reads a raster's georeferencing and layout (metadata only). */
export async function describeRaster(path: string): Promise<RasterDescription> {
  const ds = await gdal.openAsync(path);
  try {
    const width = ds.rasterSize.x;
    const height = ds.rasterSize.y;
    const band = ds.bands.get(1);
    const bounds = rasterBounds(ds.geoTransform ?? [0, 1, 0, 0, 0, -1], width, height);
    const levels: number[] = [];
    for (let i = 0; i < band.overviews.count(); i++) levels.push(Math.round(width / band.overviews.get(i).size.x));
    const structure = (ds.getMetadata('IMAGE_STRUCTURE') ?? {}) as Record<string, string>;
    return {
      crs: ds.srs ? crsLabel(ds.srs) : null,
      bounds,
      bounds_4326: ds.srs ? boundsTo4326(bounds, ds.srs) : null,
      shape: [height, width],
      band_count: ds.bands.count(),
      dtype: band.dataType ?? 'Unknown',
      nodata: nodataToJson(band.noDataValue),
      block_size: [band.blockSize.x, band.blockSize.y],
      overview_levels: levels,
      compression: structure.COMPRESSION ?? null,
      has_color_table: band.colorTable !== null,
    };
  } finally {
    ds.close();
  }
}
