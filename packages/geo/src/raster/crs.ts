import gdal from 'gdal-async';
import type { TaskError } from '@coremachine/core-machine';
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

/**
 * True when a CRS has no relation to the Earth: a local/engineering CRS (WKT1 `LOCAL_CS`, WKT2
 * `ENGCRS`), as GDAL reports for the many TIFFs with a pixel scale and tie point but no
 * GeoKeys. PROJ cannot transform it to any geographic CRS.
 */
export function isEngineeringCrs(srs: gdal.SpatialReference): boolean {
  try {
    if (srs.isLocal()) return true;
  } catch {
    /* fall through to the WKT */
  }
  try {
    return /^\s*(LOCAL_CS|ENGCRS|ENGINEERINGCRS)\[/i.test(srs.toWKT());
  } catch {
    return false;
  }
}

/** A short form of a CRS for messages: its WKT up to the first bracketed name, e.g. `ENGCRS["Cartesian (Meter)"]`. */
export function crsShortName(srs: gdal.SpatialReference): string {
  const wkt = wkt2(srs);
  const m = /^\s*([A-Z_]+)\["([^"]*)"/.exec(wkt);
  return m ? `${m[1]}["${m[2]}"]` : wkt.slice(0, 80);
}

function wkt2(srs: gdal.SpatialReference): string {
  const previous = gdal.config.get('OSR_WKT_FORMAT');
  gdal.config.set('OSR_WKT_FORMAT', 'WKT2_2019');
  try {
    return srs.toWKT();
  } catch {
    return '';
  } finally {
    gdal.config.set('OSR_WKT_FORMAT', previous);
  }
}

/**
 * The permanent CRS_NOT_GEOREFERENCED error for a file whose CRS is local (see
 * {@link isEngineeringCrs}): names the file and the CRS and says what to do.
 * @param remedy what the user can pass, e.g. `pass input_crs with the CRS its coordinates are in (e.g. "EPSG:32633")`.
 */
export function notGeoreferencedError(
  file: string,
  srs: gdal.SpatialReference,
  remedy = 'pass input_crs with the CRS its coordinates are really in (e.g. "EPSG:32633")',
): TaskError {
  const name = crsShortName(srs);
  return rasterError(
    'CRS_NOT_GEOREFERENCED',
    `${file} has a local engineering CRS (${name}) with no relation to the Earth, so it cannot be placed on a map; ${remedy}`,
    { file, crs: wkt2(srs) || name },
  );
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
  if (user && isEngineeringCrs(user)) {
    throw rasterError(
      'CRS_NOT_GEOREFERENCED',
      `input_crs '${inputCrs}' is a local engineering CRS with no relation to the Earth; give a geographic or projected CRS`,
      { input_crs: inputCrs },
    );
  }
  if (fileSrs && isEngineeringCrs(fileSrs)) {
    // The file's local CRS says nothing about where it is: the user's CRS replaces it.
    if (!user) throw notGeoreferencedError(label, fileSrs);
    return {
      srs: user,
      label: crsLabel(user),
      source: 'user_override_required',
      warnings: [
        {
          severity: 'MEDIUM',
          code: 'CRS_FROM_USER',
          message: `${label} has a local engineering CRS (${crsShortName(fileSrs)}); using input_crs ${inputCrs} as given by the user`,
        },
      ],
    };
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
