import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import gdal from 'gdal-async';

/**
 * Small rasters generated with GDAL for tests of validation and COG creation (each 256 x 256
 * unless stated). Each function writes one GeoTIFF into `dir` and returns its path.
 */
export const RASTER_FIXTURE_SIZE = 256;
const N = RASTER_FIXTURE_SIZE;

interface BandSpec {
  values: (x: number, y: number) => number;
  interp?: string;
  nodata?: number;
  colorTable?: Array<[number, number, number, number]>;
}

function write(file: string, dtype: string, srs: string | null, gt: number[], bands: BandSpec[], size = N): string {
  const ds = gdal.open(file, 'w', 'GTiff', size, size, bands.length, dtype, [
    'TILED=YES',
    'BLOCKXSIZE=128',
    'BLOCKYSIZE=128',
  ]);
  if (srs) ds.srs = gdal.SpatialReference.fromUserInput(srs);
  ds.geoTransform = gt;
  const Arr = gdal.fromDataType(dtype);
  bands.forEach((spec, i) => {
    const band = ds.bands.get(i + 1);
    const data = new Arr(size * size);
    for (let y = 0; y < size; y++) for (let x = 0; x < size; x++) data[y * size + x] = spec.values(x, y);
    band.pixels.write(0, 0, size, size, data);
    if (spec.interp) band.colorInterpretation = spec.interp;
    if (spec.nodata !== undefined) band.noDataValue = spec.nodata;
    if (spec.colorTable) {
      const ct = new gdal.ColorTable(gdal.GPI_RGB);
      spec.colorTable.forEach(([c1, c2, c3, c4], idx) => ct.set(idx, { c1, c2, c3, c4 }));
      band.colorTable = ct;
    }
  });
  ds.close();
  return file;
}

/** 3-band Byte RGB in EPSG:3857 (100 m pixels around 10°E 50°N), colour interpretation Red/Green/Blue. */
export function rgb3857(dir: string): string {
  return write(
    path.join(dir, 'rgb_3857.tif'),
    'Byte',
    'EPSG:3857',
    [1113194, 100, 0, 6446275, 0, -100],
    [
      { values: (x) => x, interp: 'Red' },
      { values: (_x, y) => y, interp: 'Green' },
      { values: (x, y) => (x * y) % 256, interp: 'Blue' },
    ],
  );
}

/** 4-band Byte RGBA in EPSG:4326; band 4 is an alpha mask (0 in the left quarter, else 255). */
export function rgba4326(dir: string): string {
  return write(
    path.join(dir, 'rgba_4326.tif'),
    'Byte',
    'EPSG:4326',
    [10, 0.001, 0, 50, 0, -0.001],
    [
      { values: (x) => x, interp: 'Red' },
      { values: (_x, y) => y, interp: 'Green' },
      { values: (x, y) => (x + y) % 256, interp: 'Blue' },
      { values: (x) => (x < N / 4 ? 0 : 255), interp: 'Alpha' },
    ],
  );
}

/** DEM_NODATA: the nodata value of {@link demUtm}. */
export const DEM_NODATA = -9999;

/** Float32 DEM (size x size, default 256) in EPSG:32633 (30 m pixels), a smooth hill, nodata -9999 in the top-left 32x32 block. */
export function demUtm(dir: string, size = N): string {
  return write(
    path.join(dir, size === N ? 'dem_utm33.tif' : `dem_utm33_${size}.tif`),
    'Float32',
    'EPSG:32633',
    [500000, 30, 0, 5000000, 0, -30],
    [
      {
        values: (x, y) =>
          x < 32 && y < 32 ? DEM_NODATA : 200 + 150 * Math.sin(x / 40) * Math.cos(y / 50) + x * 0.37 + y * 0.11,
        nodata: DEM_NODATA,
      },
    ],
    size,
  );
}

/** The classes of {@link categorical}. */
export const CATEGORICAL_CLASSES = [1, 2, 3, 5, 8];

/** Byte land-cover classes {1,2,3,5,8} in 32-pixel blocks (size x size, default 256), with a colour table, EPSG:32633; nodata 0. */
export function categorical(dir: string, size = N): string {
  const colours: Array<[number, number, number, number]> = Array.from({ length: 9 }, (_, i) => [
    i * 28,
    255 - i * 28,
    (i * 60) % 256,
    255,
  ]);
  return write(
    path.join(dir, size === N ? 'landcover.tif' : `landcover_${size}.tif`),
    'Byte',
    'EPSG:32633',
    [600000, 20, 0, 5100000, 0, -20],
    [
      {
        values: (x, y) => CATEGORICAL_CLASSES[(Math.floor(x / 32) + Math.floor(y / 32)) % CATEGORICAL_CLASSES.length]!,
        colorTable: colours,
        nodata: 0,
      },
    ],
    size,
  );
}

/** 4-band Byte in EPSG:32633 whose band 4 is a continuous gradient (near infrared, not alpha). */
export function nir4(dir: string): string {
  return write(
    path.join(dir, 'rgbn.tif'),
    'Byte',
    'EPSG:32633',
    [500000, 10, 0, 5000000, 0, -10],
    [
      { values: (x) => x },
      { values: (_x, y) => y },
      { values: (x, y) => (x + y) & 255 },
      { values: (x, y) => (x * 3 + y) & 255 },
    ],
  );
}

/** Float32 DEM in EPSG:32633 whose nodata value is NaN (left 16 columns). */
export function demNanNodata(dir: string): string {
  return write(
    path.join(dir, 'dem_nan.tif'),
    'Float32',
    'EPSG:32633',
    [500000, 30, 0, 5000000, 0, -30],
    [{ values: (x, y) => (x < 16 ? NaN : 300 + 50 * Math.sin(x / 37) + y * 0.2 + x * 0.013), nodata: NaN }],
  );
}

/** 6-band UInt16 in EPSG:32633 with distinct per-band reflectance-like gradients. */
export function multispectral6(dir: string): string {
  const bands: BandSpec[] = Array.from({ length: 6 }, (_, b) => ({
    values: (x: number, y: number) => 1000 + b * 500 + x * 7 + y * 3,
  }));
  return write(path.join(dir, 'ms6.tif'), 'UInt16', 'EPSG:32633', [400000, 10, 0, 4500000, 0, -10], bands);
}

/** 1-band Float64 in EPSG:4326 (a smooth surface). */
export function float64(dir: string): string {
  return write(
    path.join(dir, 'f64.tif'),
    'Float64',
    'EPSG:4326',
    [5, 0.001, 0, 45, 0, -0.001],
    [{ values: (x, y) => 100 + Math.sin(x / 30) * 20 + y * 0.25 + x * 0.01 }],
  );
}

/** 3-band Byte RGB with a geotransform but no CRS. */
export function noCrs(dir: string): string {
  return write(
    path.join(dir, 'no_crs.tif'),
    'Byte',
    null,
    [500000, 10, 0, 5000000, 0, -10],
    [
      { values: (x) => x, interp: 'Red' },
      { values: (_x, y) => y, interp: 'Green' },
      { values: (x, y) => (x ^ y) & 255, interp: 'Blue' },
    ],
  );
}

/** 3-band Byte RGB in EPSG:32633 whose geotransform is rotated by about 10°. */
export function rotated(dir: string): string {
  const a = (10 * Math.PI) / 180;
  const r = 10;
  return write(
    path.join(dir, 'rotated.tif'),
    'Byte',
    'EPSG:32633',
    [500000, r * Math.cos(a), r * Math.sin(a), 5000000, r * Math.sin(a), -r * Math.cos(a)],
    [
      { values: (x) => x, interp: 'Red' },
      { values: (_x, y) => y, interp: 'Green' },
      { values: (x, y) => (x + 2 * y) & 255, interp: 'Blue' },
    ],
  );
}

/** A text file named `.tif`. */
export async function textAsTif(dir: string): Promise<string> {
  const file = path.join(dir, 'notes.tif');
  await writeFile(file, 'These are field notes, not a raster.\n'.repeat(20));
  return file;
}

/** An uncompressed GeoTIFF cut to its first 40% of bytes. */
export async function truncatedTiff(dir: string): Promise<string> {
  const full = rgb3857(dir);
  const { readFile } = await import('node:fs/promises');
  const bytes = await readFile(full);
  const file = path.join(dir, 'truncated.tif');
  await writeFile(file, bytes.subarray(0, Math.floor(bytes.length * 0.4)));
  return file;
}

/** What GDAL reports for a TIFF with a pixel scale and tie point but no GeoKeys: a local engineering CRS. */
export const LOCAL_CS_WKT =
  'LOCAL_CS["Cartesian (Meter)",LOCAL_DATUM["Local Datum",0],UNIT["metre",1],AXIS["X",EAST],AXIS["Y",NORTH]]';

/** Float32 64 x 64 surface (values 100..226) in a local engineering CRS, 1 m pixels, tie point (500000, 5000000). */
export function localCrs(dir: string): string {
  return write(
    path.join(dir, 'local_crs.tif'),
    'Float32',
    LOCAL_CS_WKT,
    [500000, 1, 0, 5000000, 0, -1],
    [{ values: (x, y) => 100 + x + y }],
    64,
  );
}

/** Float32 fractions 0.01..0.99 (99 distinct values), EPSG:32633. */
export function fractions(dir: string): string {
  return write(
    path.join(dir, 'fractions.tif'),
    'Float32',
    'EPSG:32633',
    [500000, 30, 0, 5000000, 0, -30],
    [{ values: (x, y) => (((x + y) % 99) + 1) / 100 }],
  );
}

/**
 * Float32 integer DEM of `size`² (default 1100: more than the 1000 px validation sample) with
 * values 0..88 and a single -1 in the top-left corner pixel, outside the centred sample.
 */
export function integerDemWithNegative(dir: string, size = 1100): string {
  return write(
    path.join(dir, 'int_dem_neg.tif'),
    'Float32',
    'EPSG:32633',
    [500000, 30, 0, 5000000, 0, -30],
    [{ values: (x, y) => (x === 0 && y === 0 ? -1 : (x + y) % 89) }],
    size,
  );
}

/**
 * A source with no nodata and no zeros, for reprojection collars: `bands` 1 (Float32 surface
 * 100..612) or 3 (Byte RGB 1..255), 128 x 128 pixels of 10 m in EPSG:32633, north-up or rotated
 * by 20°. North-up it lies far from the zone's central meridian (x 200000), where the UTM grid is turned against WGS 84.
 */
export function collarSource(dir: string, opts: { bands: 1 | 3; rotated: boolean }): string {
  const a = opts.rotated ? (20 * Math.PI) / 180 : 0;
  const r = 10;
  const gt = [
    opts.rotated ? 500000 : 200000,
    r * Math.cos(a),
    r * Math.sin(a),
    5000000,
    r * Math.sin(a),
    -r * Math.cos(a),
  ];
  const name = `collar_${opts.bands}b_${opts.rotated ? 'rotated' : 'utm'}.tif`;
  const bands: BandSpec[] =
    opts.bands === 1
      ? [{ values: (x, y) => 100 + 2 * x + 2 * y }]
      : [
          { values: (x) => 1 + (x % 255), interp: 'Red' },
          { values: (_x, y) => 1 + (y % 255), interp: 'Green' },
          { values: (x, y) => 1 + ((x + y) % 255), interp: 'Blue' },
        ];
  return write(path.join(dir, name), opts.bands === 1 ? 'Float32' : 'Byte', 'EPSG:32633', gt, bands, 128);
}
