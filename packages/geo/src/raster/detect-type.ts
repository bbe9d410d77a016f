import type { BandSample } from './sample.ts';
import { smoothness } from './sample.ts';
import type { DetectedType } from './cog-settings.ts';

export type Confidence = 'LOW' | 'MEDIUM' | 'HIGH' | 'VERY_HIGH';

export interface TypeDetection {
  detected_type: DetectedType;
  confidence: Confidence;
  evidence: string[];
}

/** What type detection needs to know about a raster. */
export interface TypeDetectionInput {
  bandCount: number;
  dtype: string;
  /** Colour interpretation of each band (GDAL names: 'Red', 'Alpha', 'Palette', ...). */
  colorInterpretations: Array<string | null>;
  hasColorTable: boolean;
  /** Sample of band 1. */
  first: BandSample;
  /** Sample of band 4, for 4-band rasters. */
  fourth?: BandSample;
}

const RGB_TYPES = ['Byte', 'UInt16'];
const DEM_TYPES = ['Float32', 'Float64', 'Int16', 'Int32'];

/**
 * Detects what a raster holds from its band count, data type, colour interpretation and
 * sampled values (rules and confidence levels in the job README).
 */
export function detectRasterType(r: TypeDetectionInput): TypeDetection {
  const evidence = [`${r.bandCount} band(s) of ${r.dtype}`];
  if (r.bandCount === 3 && RGB_TYPES.includes(r.dtype)) {
    const red = r.colorInterpretations[0] === 'Red';
    evidence.push(
      red
        ? 'band 1 colour interpretation is Red'
        : `band 1 colour interpretation is ${r.colorInterpretations[0] ?? 'undefined'}`,
    );
    return { detected_type: 'rgb', confidence: red ? 'VERY_HIGH' : 'HIGH', evidence };
  }
  if (r.bandCount === 4 && RGB_TYPES.includes(r.dtype)) {
    const fourth = r.fourth;
    const distinct = fourth ? (fourth.uniqueCapped ? Infinity : fourth.unique.size) : Infinity;
    if (distinct <= 10) {
      evidence.push(`band 4 has ${distinct} distinct value(s) in the sample (alpha-like)`);
      if (r.colorInterpretations[3] === 'Alpha') evidence.push('band 4 colour interpretation is Alpha');
      return { detected_type: 'rgba', confidence: 'HIGH', evidence };
    }
    evidence.push(
      `band 4 has ${Number.isFinite(distinct) ? distinct : 'more than 1024'} distinct values in the sample (not an alpha mask)`,
    );
    return { detected_type: 'nir', confidence: 'MEDIUM', evidence };
  }
  if (r.bandCount === 1 && DEM_TYPES.includes(r.dtype)) {
    const s = smoothness(r.first);
    evidence.push(`smoothness ${s.toFixed(4)} (mean gradient / 2 x range; < 0.1 is terrain-like)`);
    evidence.push(`values ${r.first.min}..${r.first.max}`);
    return { detected_type: 'dem', confidence: s < 0.1 ? 'HIGH' : 'MEDIUM', evidence };
  }
  if (r.bandCount === 1 && r.first.allInteger && !r.first.uniqueCapped && r.first.unique.size < 256) {
    evidence.push(`${r.first.unique.size} distinct integer values in the sample`);
    if (r.hasColorTable) evidence.push('band 1 has a colour table');
    return { detected_type: 'categorical', confidence: r.hasColorTable ? 'VERY_HIGH' : 'HIGH', evidence };
  }
  if (r.bandCount >= 5) {
    if (r.bandCount >= 7 && r.bandCount <= 11) evidence.push('band count matches Landsat (7-11 bands)');
    if (r.bandCount >= 12 && r.bandCount <= 13) evidence.push('band count matches Sentinel-2 (12-13 bands)');
    const known = r.bandCount >= 7 && r.bandCount <= 13;
    return { detected_type: 'multispectral', confidence: known ? 'HIGH' : 'MEDIUM', evidence };
  }
  evidence.push('no rule matched');
  return { detected_type: 'unknown', confidence: 'LOW', evidence };
}
