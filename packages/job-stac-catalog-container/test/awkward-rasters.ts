import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import gdal from 'gdal-async';

/** What GDAL reports for a TIFF with a pixel scale and tie point but no GeoKeys. */
const LOCAL_CS =
  'LOCAL_CS["Cartesian (Meter)",LOCAL_DATUM["Local Datum",0],UNIT["metre",1],AXIS["X",EAST],AXIS["Y",NORTH]]';

interface Spec {
  /** EPSG code, WKT/PROJ string, or null for no CRS. */
  srs: number | string | null;
  geoTransform: number[];
  width: number;
  height: number;
  bands?: number;
  dataType?: string;
  nodata?: number;
  /** Pixel value of band `b` (0-based) at (col, row). */
  value: (c: number, r: number, b: number) => number;
  datetime?: string;
  creation?: string[];
  cog?: boolean;
  palette?: { colors: Array<[number, number, number]>; names: string[] };
  scaleOffsetUnit?: [number, number, string];
}

/**
 * Rasters that exercise every branch of the item builder: no nodata, colour table and category
 * names, rotated geotransform, a CRS without an EPSG code, multi-band with scale/offset/unit,
 * Float32 with NaN nodata across the antimeridian in EPSG:4326 (lat/long axis order), a vertical
 * CRS (band units from the CRS), big-endian and BigTIFF files, CRSs shared by several files (cache hits), a local engineering CRS, no CRS,
 * and a truncated file. Written with GDAL, deterministic, each a few KB.
 */
export const AWKWARD: Record<string, Spec | 'truncated'> = {
  'a/plain-utm.tif': {
    srs: 32631,
    geoTransform: [500000, 10, 0, 5000000, 0, -10],
    width: 64,
    height: 48,
    value: (c, r) => (c * 3 + r) % 256,
    datetime: '2021:03:04 05:06:07',
    cog: true,
  },
  'a/plain-utm-2.tif': {
    srs: 32631,
    geoTransform: [510000, 10, 0, 5000000, 0, -10],
    width: 40,
    height: 40,
    value: (c, r) => (c + 2 * r) % 7,
    cog: true,
  },
  'a/big-endian-utm.tif': {
    srs: 32631,
    geoTransform: [520000, 30, 0, 4990000, 0, -30],
    width: 33,
    height: 21,
    dataType: gdal.GDT_UInt16,
    nodata: 0,
    value: (c, r) => (c * r) % 1000,
    creation: ['ENDIANNESS=BIG'],
  },
  'b/bigtiff-utm33.tif': {
    srs: 32633,
    geoTransform: [300000, 5, 0, 6000000, 0, -5],
    width: 50,
    height: 30,
    dataType: gdal.GDT_Int16,
    nodata: -9999,
    value: (c, r) => (c === r ? -9999 : c - r),
    creation: ['BIGTIFF=YES'],
  },
  'b/palette.tif': {
    srs: 32632,
    geoTransform: [400000, 20, 0, 5200000, 0, -20],
    width: 30,
    height: 30,
    value: (c, r) => (c + r) % 4,
    palette: {
      colors: [
        [0, 0, 0],
        [0, 0, 255],
        [34, 139, 34],
        [200, 10, 10],
      ],
      names: ['', 'Water', 'Forêt dense', 'Urban / built'],
    },
  },
  'b/rotated-3857.tif': {
    srs: 3857,
    geoTransform: [1000000, 20, 5, 6000000, 4, -20],
    width: 37,
    height: 29,
    dataType: gdal.GDT_UInt16,
    nodata: 0,
    value: (c, r) => c * 100 + r,
  },
  'c/multiband-lambert93.tif': {
    srs: 2154,
    geoTransform: [650000, 25, 0, 6860000, 0, -25],
    width: 20,
    height: 16,
    bands: 3,
    dataType: gdal.GDT_Int16,
    nodata: -32768,
    value: (c, r, b) => (b === 1 ? c * r - 50 : (c + r) * (b + 1)),
    scaleOffsetUnit: [0.01, -5, 'm'],
  },
  'c/laea-no-epsg.tif': {
    srs: '+proj=laea +lat_0=52 +lon_0=10 +x_0=4321000 +y_0=3210000 +ellps=GRS80 +units=m +no_defs',
    geoTransform: [4000000, 100, 0, 3000000, 0, -100],
    width: 24,
    height: 24,
    dataType: gdal.GDT_Float64,
    value: (c, r) => Math.sin(c) * 10 + r / 3,
  },
  'c/antimeridian-4326.tif': {
    srs: 4326,
    geoTransform: [179.5, 0.05, 0, -16, 0, -0.05],
    width: 20,
    height: 10,
    bands: 2,
    dataType: gdal.GDT_Float32,
    nodata: NaN,
    value: (c, r, b) => (c === 3 ? NaN : (c - r) * (b + 0.5)),
  },
  // A vertical CRS: GDAL gives every band its unit (metre), from the CRS, not from the file's metadata.
  'c/vertical-utm-egm96.tif': {
    srs: 'EPSG:32631+5773',
    geoTransform: [530000, 10, 0, 4980000, 0, -10],
    width: 12,
    height: 10,
    dataType: gdal.GDT_Float32,
    value: (c, r) => 100 + c * 0.5 - r,
  },
  'c/vertical-utm-egm96-2.tif': {
    srs: 'EPSG:32631+5773',
    geoTransform: [540000, 10, 0, 4980000, 0, -10],
    width: 10,
    height: 12,
    bands: 2,
    dataType: gdal.GDT_Float32,
    value: (c, r, b) => 200 + c - r * (b + 1),
  },
  'd/local-engineering.tif': {
    srs: LOCAL_CS,
    geoTransform: [0, 1, 0, 100, 0, -1],
    width: 16,
    height: 16,
    value: () => 5,
  },
  'd/no-crs.tif': { srs: null, geoTransform: [0, 1, 0, 0, 0, 1], width: 16, height: 16, value: () => 9 },
  'd/truncated.tif': 'truncated',
};

function srsOf(srs: number | string): gdal.SpatialReference {
  return typeof srs === 'number' ? gdal.SpatialReference.fromEPSG(srs) : gdal.SpatialReference.fromUserInput(srs);
}

function write(path: string, spec: Spec): void {
  const bands = spec.bands ?? 1;
  const plain = spec.cog ? `${path}.src.tif` : path;
  const ds = gdal.open(plain, 'w', 'GTiff', spec.width, spec.height, bands, spec.dataType ?? gdal.GDT_Byte, [
    ...(spec.creation ?? []),
  ]);
  if (spec.srs !== null) ds.srs = srsOf(spec.srs);
  ds.geoTransform = spec.geoTransform;
  if (spec.datetime) ds.setMetadata({ TIFFTAG_DATETIME: spec.datetime });
  for (let b = 0; b < bands; b++) {
    const band = ds.bands.get(b + 1);
    if (spec.nodata !== undefined) band.noDataValue = spec.nodata;
    if (spec.scaleOffsetUnit && b === 1) {
      band.scale = spec.scaleOffsetUnit[0];
      band.offset = spec.scaleOffsetUnit[1];
      band.unitType = spec.scaleOffsetUnit[2];
    }
    if (spec.palette) {
      const table = new gdal.ColorTable(gdal.GPI_RGB);
      for (const [i, [c1, c2, c3]] of spec.palette.colors.entries()) table.set(i, { c1, c2, c3, c4: 255 });
      band.colorTable = table;
      band.categoryNames = spec.palette.names;
    }
    const data = new Float64Array(spec.width * spec.height);
    for (let r = 0; r < spec.height; r++)
      for (let c = 0; c < spec.width; c++) data[r * spec.width + c] = spec.value(c, r, b);
    band.pixels.write(0, 0, spec.width, spec.height, data);
  }
  ds.flush();
  ds.close();
  if (spec.cog) {
    const src = gdal.open(plain);
    gdal.translate(path, src, ['-of', 'COG', '-co', 'BLOCKSIZE=256', '-co', 'COMPRESS=DEFLATE']);
    src.close();
  }
}

/**
 * Writes every raster of {@link AWKWARD} under `dir` and returns blob name → file bytes, with the
 * sidecars GDAL wrote (the palette raster's category names live in its `.aux.xml`).
 */
export function awkwardRasters(dir: string): Map<string, Buffer> {
  const files = new Map<string, Buffer>();
  for (const [blob, spec] of Object.entries(AWKWARD)) {
    const path = join(dir, blob.replaceAll('/', '_'));
    if (spec === 'truncated') continue;
    write(path, spec);
    files.set(blob, readFileSync(path));
    if (existsSync(`${path}.aux.xml`)) files.set(`${blob}.aux.xml`, readFileSync(`${path}.aux.xml`));
  }
  // The first 600 bytes of a valid GeoTIFF: a header GDAL starts reading, then runs out.
  files.set('d/truncated.tif', files.get('a/big-endian-utm.tif')!.subarray(0, 600));
  return files;
}
