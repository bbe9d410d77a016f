import { access } from 'node:fs/promises';
import { readTiffStructure, type TiffIfd } from './tiff-structure.ts';

export interface CogCheck {
  valid: boolean;
  errors: string[];
  warnings: string[];
  /** Overview decimation factors, e.g. [2, 4, 8]. */
  overviewLevels: number[];
  /** [width, height] of the main image's tiles, or null when it is stripped. */
  tileSize: [number, number] | null;
  ifdOffsets: number[];
  dataOffsets: number[];
}

const REDUCED = 1;
const MASK = 4;

/**
 * Checks a local GeoTIFF against the Cloud-Optimized GeoTIFF rules (the ones GDAL's own
 * validator applies): main IFD right after the header (and ghost area), main image and
 * overviews tiled, overviews internal and decreasing in size, IFDs in order, and image data
 * placed after all IFDs, smallest overview first and full resolution last.
 *
 * @example
 *   const check = await checkCog('/tmp/out_cog.tif');
 *   if (!check.valid) throw new Error(check.errors.join('; '));
 */
export async function checkCog(path: string): Promise<CogCheck> {
  const errors: string[] = [];
  const warnings: string[] = [];
  let structure;
  try {
    structure = await readTiffStructure(path);
  } catch (err) {
    const message = err instanceof Error ? err.message : String(err);
    return {
      valid: false,
      errors: [message],
      warnings,
      overviewLevels: [],
      tileSize: null,
      ifdOffsets: [],
      dataOffsets: [],
    };
  }
  if (await exists(`${path}.ovr`)) errors.push('Overviews found in external .ovr file. They should be internal');

  const images = structure.ifds.filter((ifd) => (ifd.subfileType & MASK) === 0);
  const main = images[0];
  if (!main)
    return {
      valid: false,
      errors: ['TIFF has no image IFD'],
      warnings,
      overviewLevels: [],
      tileSize: null,
      ifdOffsets: [],
      dataOffsets: [],
    };
  const overviews = images.slice(1).filter((ifd) => (ifd.subfileType & REDUCED) !== 0);

  if (structure.ghostArea?.includes('KNOWN_INCOMPATIBLE_EDITION=YES'))
    errors.push('KNOWN_INCOMPATIBLE_EDITION=YES is declared in the file');
  if (main.offset !== structure.expectedFirstIfdOffset) {
    errors.push(
      `The offset of the main IFD should be ${structure.expectedFirstIfdOffset}. It is ${main.offset} instead`,
    );
  }
  if (!structure.ghostArea?.includes('LAYOUT=IFDS_BEFORE_DATA'))
    warnings.push('No GDAL ghost area declaring LAYOUT=IFDS_BEFORE_DATA');

  if ((main.width > 512 || main.height > 512) && !tiled(main))
    errors.push('The file is greater than 512xH or Wx512, but is not tiled');
  if ((main.width > 512 || main.height > 512) && overviews.length === 0) {
    warnings.push('The file is greater than 512xH or Wx512, it is recommended to include internal overviews');
  }

  let previous: TiffIfd = main;
  overviews.forEach((ovr, i) => {
    if (ovr.width > previous.width || ovr.height > previous.height) {
      errors.push(
        i === 0
          ? 'First overview has larger dimension than main band'
          : `Overview of index ${i} has larger dimension than overview of index ${i - 1}`,
      );
    }
    if (!tiled(ovr)) errors.push(`Overview of index ${i} is not tiled`);
    if (ovr.offset < previous.offset) {
      errors.push(
        `The offset of the IFD for overview of index ${i} is ${ovr.offset}, whereas it should be greater than the previous IFD at byte ${previous.offset}`,
      );
    }
    previous = ovr;
  });

  const levels = [main, ...overviews];
  const ifdOffsets = levels.map((l) => l.offset);
  const dataOffsets = levels.map((l) => l.firstDataOffset);
  const lastIfd = Math.max(...structure.ifds.map((ifd) => ifd.offset));
  const smallest = dataOffsets[dataOffsets.length - 1]!;
  if (smallest !== 0 && smallest < lastIfd) {
    errors.push(
      overviews.length
        ? 'The offset of the first block of the smallest overview should be after its IFD'
        : 'The offset of the first block of the image should be after its IFD',
    );
  }
  for (let i = dataOffsets.length - 2; i >= 1; i--) {
    if (dataOffsets[i] !== 0 && dataOffsets[i]! < dataOffsets[i + 1]!) {
      errors.push(
        `The offset of the first block of overview of index ${i - 1} should be after the one of the overview of index ${i}`,
      );
    }
  }
  if (dataOffsets.length >= 2 && dataOffsets[0] !== 0 && dataOffsets[0]! < dataOffsets[1]!) {
    errors.push(
      `The offset of the first block of the main resolution image should be after the one of the overview of index ${overviews.length - 1}`,
    );
  }

  return {
    valid: errors.length === 0,
    errors,
    warnings,
    overviewLevels: overviews.map((o) => Math.round(main.width / o.width)),
    tileSize: tiled(main) ? [main.tileWidth!, main.tileHeight!] : null,
    ifdOffsets,
    dataOffsets,
  };
}

function tiled(ifd: TiffIfd): boolean {
  return ifd.tileWidth !== null && ifd.tileHeight !== null;
}

async function exists(path: string): Promise<boolean> {
  try {
    await access(path);
    return true;
  } catch {
    return false;
  }
}
