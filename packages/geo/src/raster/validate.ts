import gdal from 'gdal-async';
import { checkBitDepth } from './bit-depth.ts';
import { boundsTo4326, boundsWarnings, isRotated, rasterBounds } from './bounds.ts';
import { optimalCogSettings, type RasterType } from './cog-settings.ts';
import { resolveCrs, type RasterWarning } from './crs.ts';
import { detectRasterType } from './detect-type.ts';
import { rasterError } from './errors.ts';
import { openRaster } from './open.ts';
import { bandRange } from './range.ts';
import { sampleBand } from './sample.ts';
import { effectiveGeoTransform, gcpCrs } from './warp-grid.ts';
import { nodataToJson, type ValidationResult } from './schemas.ts';

export interface ValidateRasterOptions {
  /** What GDAL opens: a local path or `/vsiaz/<container>/<blob>`. */
  path: string;
  sourceBlob: string;
  containerName: string;
  inputCrs?: string;
  rasterType?: RasterType | 'auto';
  strictMode?: boolean;
  /** Size of the file in bytes, when the caller knows it (else GDAL stats the path). */
  sizeBytes?: number;
}

/**
 * Validates a raster in five checks: CRS rules, bounds sanity, bit-depth policy, type
 * detection, optimal COG settings. Reads metadata and one sampled window per band checked,
 * never the whole raster. Throws permanent `TaskError`s (FILE_UNREADABLE, NOT_A_RASTER,
 * CRS_MISSING, CRS_MISMATCH, RASTER_TYPE_MISMATCH, BIT_DEPTH_POLICY_VIOLATION).
 *
 * @example
 *   const result = await validateRaster({ path: '/vsiaz/bronze/dem.tif', sourceBlob: 'dem.tif', containerName: 'bronze' });
 *   result.raster_type.detected_type; // 'dem'
 */
export async function validateRaster(opts: ValidateRasterOptions): Promise<ValidationResult> {
  const label = `${opts.containerName}/${opts.sourceBlob}`;
  const ds = await openRaster(opts.path, label);
  try {
    const width = ds.rasterSize.x;
    const height = ds.rasterSize.y;
    const bandCount = ds.bands.count();
    const band1 = ds.bands.get(1);
    const dtype = band1.dataType ?? 'Unknown';
    const warnings: RasterWarning[] = [];

    // 1. CRS rules
    const gcpSrs = ds.srs ? null : gcpCrs(ds);
    const crs = resolveCrs(ds.srs ?? gcpSrs, opts.inputCrs, label);
    warnings.push(...crs.warnings);

    // 2. Bounds sanity
    const gt = effectiveGeoTransform(ds, crs.srs);
    if (!ds.geoTransform && gt)
      warnings.push({
        severity: 'MEDIUM',
        code: 'GCP_GEOREFERENCED',
        message: `${label} is georeferenced by ${ds.getGCPs().length} ground control points; a COG will be warped onto a north-up grid`,
      });
    // Neither a geotransform nor GCPs: pixel coordinates only, nothing can place it on a map
    // (a PNG or JPEG whose world file was not uploaded beside it, a bare image).
    if (!gt)
      throw rasterError(
        'RASTER_NO_GEOTRANSFORM',
        `${label} is not georeferenced (no geotransform, no ground control points): upload its world file (.wld, .pgw, .jgw, .tfw) or .aux.xml beside it, or assign its corners (gdal_edit -a_ullr)`,
      );
    const geo = gt ?? [0, 1, 0, 0, 0, -1];
    const rotated = isRotated(geo);
    if (rotated) {
      warnings.push({
        severity: 'MEDIUM',
        code: 'ROTATED_GEOTRANSFORM',
        message: `${label} has a rotated geotransform [${geo.join(', ')}]; a COG will be warped north-up`,
      });
    }
    const bounds = rasterBounds(geo, width, height);
    warnings.push(...boundsWarnings(bounds, crs.label, [geo[1] ?? 0, geo[5] ?? 0]));
    const bounds4326 = boundsTo4326(bounds, crs.srs, label);

    // 3. Bit depth
    const first = await sampleBand(band1, label, opts.path);
    const bitDepth = checkBitDepth(dtype, first, await bandRange(band1, label, opts.path));
    warnings.push(...bitDepth.warnings);
    if (bitDepth.policy_violation && opts.strictMode) {
      throw rasterError('BIT_DEPTH_POLICY_VIOLATION', `${label}: ${bitDepth.reason} (strict_mode is on)`, {
        dtype,
        recommended_dtype: bitDepth.recommended_dtype,
      });
    }

    // 4. Type detection
    const colorInterpretations: Array<string | null> = [];
    for (let i = 1; i <= bandCount; i++) colorInterpretations.push(ds.bands.get(i).colorInterpretation);
    const fourth = bandCount === 4 ? await sampleBand(ds.bands.get(4), label, opts.path) : undefined;
    const detection = detectRasterType({
      bandCount,
      dtype,
      colorInterpretations,
      hasColorTable: band1.colorTable !== null,
      first,
      ...(fourth ? { fourth } : {}),
    });
    const requested = opts.rasterType ?? 'auto';
    let typeSource: 'auto_detected' | 'user_confirmed' | 'user_specified' = 'auto_detected';
    let finalType = detection.detected_type;
    if (requested !== 'auto') {
      if (detection.detected_type === requested) typeSource = 'user_confirmed';
      else if (detection.detected_type === 'unknown') {
        // Nothing in the file contradicts the user: take their word, say so.
        typeSource = 'user_specified';
        finalType = requested;
        warnings.push({
          severity: 'MEDIUM',
          code: 'TYPE_FROM_USER',
          message: `type could not be detected; using raster_type ${requested} as given`,
        });
      } else {
        throw rasterError(
          'RASTER_TYPE_MISMATCH',
          `${label} looks like ${detection.detected_type} (${detection.confidence}: ${detection.evidence.join('; ')}) but raster_type is ${requested}`,
          { requested, detected: detection },
        );
      }
    }

    // 5. COG settings
    const settings = optimalCogSettings(finalType, dtype);
    const sizeBytes = opts.sizeBytes ?? statSize(opts.path);
    return {
      valid: true,
      source_blob: opts.sourceBlob,
      container_name: opts.containerName,
      source_crs: crs.label,
      crs_source: crs.source,
      bounds,
      bounds_4326: bounds4326,
      rotated,
      shape: [height, width],
      band_count: bandCount,
      dtype,
      size_mb: Math.round((sizeBytes / (1024 * 1024)) * 1000) / 1000,
      nodata: nodataToJson(band1.noDataValue),
      driver: ds.driver.description,
      raster_type: { ...detection, detected_type: finalType, type_source: typeSource, optimal_cog_settings: settings },
      bit_depth_check: {
        efficient: bitDepth.efficient,
        current_dtype: bitDepth.current_dtype,
        reason: bitDepth.reason,
        ...(bitDepth.recommended_dtype ? { recommended_dtype: bitDepth.recommended_dtype } : {}),
      },
      warnings,
    };
  } finally {
    ds.close();
  }
}

function statSize(path: string): number {
  try {
    return gdal.fs.stat(path).size;
  } catch {
    return 0;
  }
}
