import { execFileSync } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export const tmp = () => mkdtempSync(join(tmpdir(), 'cm-stac-job-'));

/**
 * A small COG made with the GDAL command line: `size`² pixels of 10 m in UTM 31N at
 * `originX`, filled with `value`, TIFFTAG_DATETIME set when `datetime` is given.
 */
export function makeCog(
  dir: string,
  name: string,
  opts: { originX?: number; value?: number; size?: number; datetime?: string; srs?: string | null } = {},
): string {
  const size = opts.size ?? 256;
  const x0 = opts.originX ?? 500000;
  const src = join(dir, `${name}.src.tif`);
  const out = join(dir, name);
  execFileSync('gdal_create', [
    '-of',
    'GTiff',
    '-outsize',
    String(size),
    String(size),
    '-bands',
    '1',
    '-ot',
    'Byte',
    '-burn',
    String(opts.value ?? 7),
    ...(opts.srs === null ? [] : ['-a_srs', opts.srs ?? 'EPSG:32631']),
    '-a_ullr',
    String(x0),
    '5000000',
    String(x0 + size * 10),
    String(5000000 - size * 10),
    ...(opts.datetime ? ['-mo', `TIFFTAG_DATETIME=${opts.datetime}`] : []),
    src,
  ]);
  execFileSync('gdal_translate', ['-q', '-of', 'COG', '-co', 'BLOCKSIZE=256', src, out]);
  return out;
}
