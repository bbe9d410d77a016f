/** Raster types that validation detects (and that a user may assert). */
export const RASTER_TYPES = ['rgb', 'rgba', 'dem', 'categorical', 'multispectral', 'nir'] as const;
export type RasterType = (typeof RASTER_TYPES)[number];
export type DetectedType = RasterType | 'unknown';

/** COG compressions the system GDAL's COG driver accepts (checked against GDAL 3.6). */
export const COMPRESSIONS = [
  'jpeg',
  'webp',
  'deflate',
  'zstd',
  'lzw',
  'lerc',
  'lerc_deflate',
  'lerc_zstd',
  'none',
] as const;
export type Compression = (typeof COMPRESSIONS)[number];

/** GDAL resampling names accepted for overviews and reprojection. */
export const RESAMPLINGS = [
  'nearest',
  'bilinear',
  'cubic',
  'cubicspline',
  'lanczos',
  'average',
  'mode',
  'rms',
] as const;
export type Resampling = (typeof RESAMPLINGS)[number];

export interface CogSettings {
  compression: Compression;
  /** JPEG/WebP quality (1-100); null for lossless compressions. */
  jpeg_quality: number | null;
  overview_resampling: Resampling;
  reproject_resampling: Resampling;
}

const BY_TYPE: Record<DetectedType, CogSettings> = {
  rgb: { compression: 'jpeg', jpeg_quality: 85, overview_resampling: 'cubic', reproject_resampling: 'cubic' },
  rgba: { compression: 'webp', jpeg_quality: 85, overview_resampling: 'cubic', reproject_resampling: 'cubic' },
  dem: {
    compression: 'lerc_deflate',
    jpeg_quality: null,
    overview_resampling: 'average',
    reproject_resampling: 'bilinear',
  },
  categorical: {
    compression: 'deflate',
    jpeg_quality: null,
    overview_resampling: 'mode',
    reproject_resampling: 'nearest',
  },
  multispectral: {
    compression: 'deflate',
    jpeg_quality: null,
    overview_resampling: 'average',
    reproject_resampling: 'bilinear',
  },
  nir: { compression: 'deflate', jpeg_quality: null, overview_resampling: 'cubic', reproject_resampling: 'cubic' },
  unknown: { compression: 'deflate', jpeg_quality: null, overview_resampling: 'cubic', reproject_resampling: 'cubic' },
};

/**
 * The COG settings that suit a raster type. JPEG and WebP take 8-bit data only (WebP also
 * 3 or 4 bands only), so 16-bit RGB/RGBA fall back to deflate.
 */
export function optimalCogSettings(type: DetectedType, dtype: string): CogSettings {
  const settings = { ...BY_TYPE[type] };
  if ((settings.compression === 'jpeg' || settings.compression === 'webp') && dtype !== 'Byte') {
    settings.compression = 'deflate';
    settings.jpeg_quality = null;
  }
  return settings;
}

/**
 * Why a compression cannot encode a raster (null when it can): JPEG needs 8-bit data in 1,
 * 3 or 4 bands, WebP 8-bit data in 3 or 4 bands, LERC no complex or 64-bit integers.
 */
export function compressionProblem(compression: Compression, dtype: string, bandCount: number): string | null {
  if (compression === 'jpeg' && (dtype !== 'Byte' || ![1, 3, 4].includes(bandCount))) {
    return `jpeg needs 8-bit data in 1, 3 or 4 bands; this raster is ${bandCount} x ${dtype}`;
  }
  if (compression === 'webp' && (dtype !== 'Byte' || ![3, 4].includes(bandCount))) {
    return `webp needs 8-bit data in 3 or 4 bands; this raster is ${bandCount} x ${dtype}`;
  }
  if (compression.startsWith('lerc') && (dtype.startsWith('C') || dtype === 'Int64' || dtype === 'UInt64')) {
    return `${compression} cannot encode ${dtype}`;
  }
  return null;
}
