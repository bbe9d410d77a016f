import gdal from 'gdal-async';
import { rasterError } from './errors.ts';

export type CrsSource = 'file_metadata' | 'user_confirmed' | 'user_override_required';

export interface ResolvedCrs {
  srs: gdal.SpatialReference;
  /** `EPSG:<code>` when the CRS has one, else its WKT. */
  label: string;
  source: CrsSource;
  warnings: RasterWarning[];
}

export interface RasterWarning {
  severity: 'LOW' | 'MEDIUM' | 'HIGH' | 'CRITICAL';
  code: string;
  message: string;
}

/** Parses a user CRS (`EPSG:32633`, WKT, PROJ string); returns null when GDAL cannot. */
export function parseCrs(input: string): gdal.SpatialReference | null {
  try {
    return gdal.SpatialReference.fromUserInput(input);
  } catch {
    return null;
  }
}

/** `EPSG:<code>` when GDAL can identify one, else the WKT. */
export function crsLabel(srs: gdal.SpatialReference): string {
  const direct = authority(srs);
  if (direct) return direct;
  try {
    const copy = srs.clone();
    copy.autoIdentifyEPSG();
    return authority(copy) ?? srs.toWKT();
  } catch {
    return srs.toWKT();
  }
}

function authority(srs: gdal.SpatialReference): string | null {
  try {
    const name = srs.getAuthorityName(null);
    const code = srs.getAuthorityCode(null);
    return name && code ? `${name}:${code}` : null;
  } catch {
    return null;
  }
}

/** The EPSG code of a CRS label, if it is one. */
export function epsgCode(label: string): number | null {
  const match = /^EPSG:(\d+)$/i.exec(label);
  return match ? Number(match[1]) : null;
}

/**
 * The CRS rules of validation. CRSs are compared semantically (OSR IsSame), so
 * `EPSG:32633` and the equivalent PROJ string agree.
 * - file CRS only: file_metadata; both and same: user_confirmed; both and different:
 *   CRS_MISMATCH; user CRS only: user_override_required (MEDIUM warning); neither: CRS_MISSING.
 */
export function resolveCrs(
  fileSrs: gdal.SpatialReference | null,
  inputCrs: string | undefined,
  label: string,
): ResolvedCrs {
  const user = inputCrs === undefined ? null : parseCrs(inputCrs);
  if (inputCrs !== undefined && !user) {
    throw rasterError('CRS_MISMATCH', `input_crs '${inputCrs}' is not a CRS GDAL understands`, { input_crs: inputCrs });
  }
  if (fileSrs && !user) return { srs: fileSrs, label: crsLabel(fileSrs), source: 'file_metadata', warnings: [] };
  if (fileSrs && user) {
    if (!fileSrs.isSame(user)) {
      throw rasterError(
        'CRS_MISMATCH',
        `${label} is in ${crsLabel(fileSrs)} but input_crs says ${inputCrs}; remove input_crs or fix the file`,
        { file_crs: crsLabel(fileSrs), input_crs: inputCrs },
      );
    }
    return { srs: fileSrs, label: crsLabel(fileSrs), source: 'user_confirmed', warnings: [] };
  }
  if (user) {
    return {
      srs: user,
      label: crsLabel(user),
      source: 'user_override_required',
      warnings: [
        {
          severity: 'MEDIUM',
          code: 'CRS_FROM_USER',
          message: `${label} has no CRS; using input_crs ${inputCrs} as given by the user`,
        },
      ],
    };
  }
  throw rasterError('CRS_MISSING', `${label} has no CRS and no input_crs was given; pass input_crs (e.g. "EPSG:4326")`);
}
