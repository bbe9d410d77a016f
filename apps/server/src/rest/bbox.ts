/**
 * The `bbox` query parameter of OGC API Features and STAC item search, one reading for both:
 * `west,south,east,north` (or the 6-number 3D form, whose heights are ignored) in CRS84. A bbox
 * whose west is greater than its east crosses the antimeridian (OGC API Features 1.0 §7.15.3,
 * RFC 7946 §5.2); one whose south is above its north is refused, as are numbers out of range.
 */
import { HttpError } from './http.ts';

export type Bbox = [west: number, south: number, east: number, north: number];

const invalid = (value: unknown, why: string) =>
  new HttpError(400, 'InvalidParameterValue', `bbox ${JSON.stringify(value)} is invalid: ${why}`);

/** Parses a bbox given as a comma-separated string or an array of numbers; 400 when invalid. */
export function parseBbox(value: unknown): Bbox {
  const raw = typeof value === 'string' ? value.split(',').map((s) => (s.trim() === '' ? NaN : Number(s))) : value;
  if (
    !Array.isArray(raw) ||
    (raw.length !== 4 && raw.length !== 6) ||
    raw.some((n) => typeof n !== 'number' || !Number.isFinite(n))
  )
    throw invalid(value, 'give 4 numbers west,south,east,north (or 6 for 3D)');
  const n = raw as number[];
  const b: Bbox = n.length === 6 ? [n[0]!, n[1]!, n[3]!, n[4]!] : [n[0]!, n[1]!, n[2]!, n[3]!];
  const [w, s, e, north] = b;
  if (s > north) throw invalid(value, `south ${s} is above north ${north}`);
  if (s < -90 || north > 90) throw invalid(value, 'latitudes must be within -90..90');
  if (w < -180 || w > 180 || e < -180 || e > 180) throw invalid(value, 'longitudes must be within -180..180');
  return b;
}

/** True when the bbox crosses the antimeridian (west > east). */
export const crossesAntimeridian = (b: Bbox) => b[0] > b[2];

/** The bbox as one or two boxes that do not cross the antimeridian. */
export function bboxParts(b: Bbox): Bbox[] {
  const [w, s, e, n] = b;
  return w <= e
    ? [b]
    : [
        [w, s, 180, n],
        [-180, s, e, n],
      ];
}

/**
 * SQL selecting the rows whose geometry column intersects the bbox (index-assisted `&&`, then
 * `ST_Intersects`), split at the antimeridian. `arg` binds a value and returns its placeholder;
 * `srid` is the column's SRID (the boxes are transformed to it unless 4326 or unknown).
 */
export function bboxSql(column: string, b: Bbox, arg: (v: unknown) => string, srid: number | null = 4326): string {
  const parts = bboxParts(b).map(([w, s, e, n]) => {
    let env = `ST_MakeEnvelope(${arg(w)}, ${arg(s)}, ${arg(e)}, ${arg(n)}, 4326)`;
    if (srid && srid !== 4326) env = `ST_Transform(${env}, ${srid})`;
    return `(${column} && ${env} AND ST_Intersects(${column}, ${env}))`;
  });
  return parts.length === 1 ? parts[0]! : `(${parts.join(' OR ')})`;
}
