import gdal from 'gdal-async';
import { COPY_NULL, copyArray, copyEscape } from './copy-text.ts';

/** A source attribute as it lands in PostgreSQL. */
export interface ColumnPlan {
  /** Field name in the source. */
  source: string;
  /** Laundered PostgreSQL column name. */
  name: string;
  /** OGR field type (`integer64`, `dateTime`, ...). */
  ogrType: string;
  /** PostgreSQL type of the column. */
  pgType: string;
}

/**
 * PostgreSQL type for an OGR field type. 64-bit integers stay `bigint` (a 32-bit column would
 * overflow), dates and times keep their own types, lists become arrays.
 */
export function pgTypeFor(ogrType: string): string {
  switch (ogrType) {
    case gdal.OFTInteger:
      return 'integer';
    case gdal.OFTInteger64:
      return 'bigint';
    case gdal.OFTReal:
      return 'double precision';
    case gdal.OFTDate:
      return 'date';
    case gdal.OFTTime:
      return 'time';
    case gdal.OFTDateTime:
      return 'timestamptz';
    case gdal.OFTBinary:
      return 'bytea';
    case gdal.OFTIntegerList:
      return 'integer[]';
    case gdal.OFTInteger64List:
      return 'bigint[]';
    case gdal.OFTRealList:
      return 'double precision[]';
    case gdal.OFTStringList:
    case gdal.OFTWideStringList:
      return 'text[]';
    default:
      return 'text';
  }
}

interface OgrDateParts {
  year?: number;
  month?: number;
  day?: number;
  hour?: number;
  minute?: number;
  second?: number;
  timezone?: number;
}

const pad = (n: number | undefined, w = 2) => String(n ?? 0).padStart(w, '0');

function seconds(s: number | undefined): string {
  const v = s ?? 0;
  return Number.isInteger(v) ? pad(v) : v.toFixed(3).padStart(6, '0');
}

/** GDAL's TZ flag: 0 unknown, 1 local, 100 UTC, 100 +/- n: offset of n quarter hours. */
function zone(tz: number | undefined): string {
  if (tz === undefined || tz < 100) return '';
  const minutes = (tz - 100) * 15;
  const sign = minutes < 0 ? '-' : '+';
  const abs = Math.abs(minutes);
  return `${sign}${pad(Math.floor(abs / 60))}:${pad(abs % 60)}`;
}

/**
 * Returns a function that turns a value from `feature.fields.toArray()` into a COPY text
 * field for a column of the given OGR type.
 */
export function copyFormatterFor(ogrType: string): (value: unknown) => string {
  switch (ogrType) {
    case gdal.OFTDate:
      return (v) => {
        if (v === null || v === undefined) return COPY_NULL;
        const d = v as OgrDateParts;
        return `${pad(d.year, 4)}-${pad(d.month)}-${pad(d.day)}`;
      };
    case gdal.OFTTime:
      return (v) => {
        if (v === null || v === undefined) return COPY_NULL;
        const d = v as OgrDateParts;
        return `${pad(d.hour)}:${pad(d.minute)}:${seconds(d.second)}`;
      };
    case gdal.OFTDateTime:
      return (v) => {
        if (v === null || v === undefined) return COPY_NULL;
        const d = v as OgrDateParts;
        return `${pad(d.year, 4)}-${pad(d.month)}-${pad(d.day)} ${pad(d.hour)}:${pad(d.minute)}:${seconds(d.second)}${zone(d.timezone)}`;
      };
    case gdal.OFTBinary:
      return (v) =>
        v === null || v === undefined ? COPY_NULL : `\\\\x${Buffer.from(v as Uint8Array).toString('hex')}`;
    case gdal.OFTIntegerList:
    case gdal.OFTInteger64List:
    case gdal.OFTRealList:
    case gdal.OFTStringList:
    case gdal.OFTWideStringList:
      return (v) => (v === null || v === undefined ? COPY_NULL : copyArray(v as unknown[]));
    case gdal.OFTInteger:
    case gdal.OFTInteger64:
    case gdal.OFTReal:
      return (v) =>
        v === null || v === undefined || (typeof v === 'number' && !Number.isFinite(v)) ? COPY_NULL : String(v);
    default:
      return (v) => (v === null || v === undefined ? COPY_NULL : copyEscape(String(v)));
  }
}
