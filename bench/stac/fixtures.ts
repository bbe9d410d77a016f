import gdal from 'gdal-async';

/** `--name value` from the command line, as a number. */
export const arg = (name: string, fallback: number): number => {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? Number(process.argv[i + 1]) : fallback;
};

/** One small COG as bytes: 256 x 256 Byte in UTM 31N, placed on a grid by index. */
export function cogBytes(i: number): Buffer {
  const mem = gdal.open('mem', 'w', 'MEM', 256, 256, 1, gdal.GDT_Byte);
  mem.srs = gdal.SpatialReference.fromEPSG(32631);
  mem.geoTransform = [400000 + (i % 40) * 2560, 10, 0, 5000000 - Math.floor(i / 40) * 2560, 0, -10];
  const data = new Uint8Array(256 * 256);
  for (let p = 0; p < data.length; p++) data[p] = (p + i) % 251;
  mem.bands.get(1).pixels.write(0, 0, 256, 256, data);
  const file = `/vsimem/bench-${i}.tif`;
  gdal.drivers.get('COG').createCopy(file, mem, { COMPRESS: 'DEFLATE' }).close();
  mem.close();
  return gdal.vsimem.release(file);
}
