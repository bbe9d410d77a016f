import type { Pool } from 'pg';
import { quoteIdent } from '@coremachine/core-machine';
import { StacError } from '../errors.ts';
import type { Bbox, StacItem } from '../types.ts';

export const DEFAULT_LIMIT = 10;
export const MAX_LIMIT = 10_000;

/** An item search, as the STAC API's GET and POST /search and /collections/{id}/items take it. */
export interface ItemSearch {
  collections?: string[];
  ids?: string[];
  /** [west, south, east, north]; west > east crosses the antimeridian. */
  bbox?: number[];
  intersects?: { type: string };
  /** Closed or open interval; null = open end. */
  datetime?: { start: string | null; end: string | null };
  limit?: number;
  /** Opaque paging token from a previous page's `next` link. */
  token?: string;
}

export interface SearchPage {
  items: StacItem[];
  numberMatched: number;
  /** Token for the next page, or null on the last page. */
  next: string | null;
}

const invalid = (message: string) => new StacError('STAC_INVALID_QUERY', message);

/**
 * Parses a STAC/OGC datetime parameter: an instant, or `start/end` where either side may be
 * `..` or empty (open).
 * @throws StacError STAC_INVALID_QUERY naming the bad value.
 */
export function parseDatetime(value: string): { start: string | null; end: string | null } {
  const check = (s: string): string | null => {
    if (s === '' || s === '..') return null;
    if (/^\d{4}-\d{2}-\d{2}$/.test(s)) {
      throw invalid(
        `datetime ${JSON.stringify(value)} is invalid: RFC 3339 requires a time and an offset (${s}T00:00:00Z, not ${s}); for the whole day give the interval ${s}T00:00:00Z/${s}T23:59:59Z`,
      );
    }
    if (!/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$/i.test(s) || Number.isNaN(Date.parse(s))) {
      throw invalid(
        `datetime ${JSON.stringify(value)} is invalid: use RFC 3339 (2020-01-01T00:00:00Z), or an interval start/end with .. for an open end`,
      );
    }
    return new Date(s).toISOString();
  };
  const parts = value.split('/');
  if (parts.length === 1) {
    const t = check(parts[0]!);
    if (t === null) throw invalid(`datetime ${JSON.stringify(value)} is invalid: a single datetime cannot be open`);
    return { start: t, end: t };
  }
  if (parts.length !== 2)
    throw invalid(`datetime ${JSON.stringify(value)} is invalid: at most one / separates start and end`);
  const [start, end] = [check(parts[0]!), check(parts[1]!)];
  if (start === null && end === null) throw invalid(`datetime ${JSON.stringify(value)} is invalid: both ends are open`);
  if (start && end && start > end) throw invalid(`datetime ${JSON.stringify(value)} is invalid: start is after end`);
  return { start, end };
}

/** Checks a bbox of 4 (or 6, 3D) numbers with south ≤ north. */
export function parseBbox(value: unknown): number[] {
  const raw = typeof value === 'string' ? value.split(',').map((s) => (s.trim() === '' ? NaN : Number(s))) : value;
  if (
    !Array.isArray(raw) ||
    (raw.length !== 4 && raw.length !== 6) ||
    raw.some((n) => typeof n !== 'number' || !Number.isFinite(n))
  ) {
    throw invalid(`bbox ${JSON.stringify(value)} is invalid: give 4 numbers west,south,east,north (or 6 for 3D)`);
  }
  const b = raw.length === 6 ? ([raw[0], raw[1], raw[3], raw[4]] as number[]) : (raw as number[]);
  if (b[1]! > b[3]!) throw invalid(`bbox ${JSON.stringify(value)} is invalid: south ${b[1]} is above north ${b[3]}`);
  return b;
}

function encodeToken(collection: string, id: string): string {
  return Buffer.from(JSON.stringify([collection, id])).toString('base64url');
}

function decodeToken(token: string): [string, string] {
  try {
    const v = JSON.parse(Buffer.from(token, 'base64url').toString('utf8')) as unknown;
    if (Array.isArray(v) && v.length === 2 && v.every((s) => typeof s === 'string')) return v as [string, string];
  } catch {
    /* reported below */
  }
  throw invalid(`token ${JSON.stringify(token)} is invalid: use the href of a next link as given`);
}

/**
 * Searches items. Pages are keyset-paged on (collection, id), so paging stays stable while
 * items are added and costs the same on page 1 and page 1,000.
 */
export async function searchItems(pool: Pool, schema: string, search: ItemSearch): Promise<SearchPage> {
  // Above the maximum, a page of the maximum (OGC API Features: the server clamps, it does not refuse).
  const limit = Math.min(search.limit ?? DEFAULT_LIMIT, MAX_LIMIT);
  if (!Number.isInteger(limit) || limit < 1)
    throw invalid(
      `limit ${JSON.stringify(search.limit)} is invalid: use an integer of at least 1 (at most ${MAX_LIMIT} are returned)`,
    );
  if (search.bbox && search.intersects) throw invalid('bbox and intersects cannot be used together: give one of them');
  const where: string[] = [];
  const args: unknown[] = [];
  const arg = (v: unknown) => `$${args.push(v)}`;
  if (search.collections?.length) where.push(`collection = ANY(${arg(search.collections)}::text[])`);
  if (search.ids?.length) where.push(`id = ANY(${arg(search.ids)}::text[])`);
  if (search.bbox) {
    const [w, s, e, n] = parseBbox(search.bbox) as Bbox;
    const env = (a: number, b: number) => `ST_MakeEnvelope(${arg(a)}, ${arg(s)}, ${arg(b)}, ${arg(n)}, 4326)`;
    where.push(
      w <= e
        ? `geometry && ${env(w, e)} AND ST_Intersects(geometry, ${env(w, e)})`
        : `(ST_Intersects(geometry, ${env(w, 180)}) OR ST_Intersects(geometry, ${env(-180, e)}))`,
    );
  }
  if (search.intersects) {
    if (typeof search.intersects !== 'object' || typeof search.intersects.type !== 'string')
      throw invalid('intersects is invalid: give a GeoJSON geometry object');
    where.push(
      `ST_Intersects(geometry, ST_SetSRID(ST_GeomFromGeoJSON(${arg(JSON.stringify(search.intersects))}), 4326))`,
    );
  }
  if (search.datetime) {
    if (search.datetime.end !== null) where.push(`start_datetime <= ${arg(search.datetime.end)}::timestamptz`);
    if (search.datetime.start !== null) where.push(`end_datetime >= ${arg(search.datetime.start)}::timestamptz`);
  }
  const filter = where.length ? `WHERE ${where.join(' AND ')}` : '';
  const page = search.token ? decodeToken(search.token) : null;
  const pageFilter = page
    ? `${filter ? `${filter} AND` : 'WHERE'} (collection, id) > (${arg(page[0])}, ${arg(page[1])})`
    : filter;
  const t = quoteIdent(schema);
  try {
    const countArgs = args.slice(0, page ? -2 : undefined);
    const [{ rows }, count] = await Promise.all([
      pool.query<{ content: StacItem; collection: string; id: string }>(
        `SELECT content, collection, id FROM ${t}.items ${pageFilter} ORDER BY collection, id LIMIT ${limit + 1}`,
        args,
      ),
      pool.query<{ n: number }>(`SELECT count(*)::int AS n FROM ${t}.items ${filter}`, countArgs),
    ]);
    const more = rows.length > limit;
    const shown = rows.slice(0, limit);
    const last = shown[shown.length - 1];
    return {
      items: shown.map((r) => r.content),
      numberMatched: count.rows[0]!.n,
      next: more && last ? encodeToken(last.collection, last.id) : null,
    };
  } catch (err) {
    // Bad GeoJSON reaches PostGIS only here; report it as the caller's error.
    if ((err as { code?: string }).code === 'XX000' && search.intersects)
      throw invalid(`intersects is invalid: ${(err as Error).message}`);
    throw err;
  }
}
