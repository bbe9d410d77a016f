import { z } from 'zod';

const ISO_RE =
  /^(\d{4})-(\d{2})-(\d{2})(?:[T ](\d{2}):(\d{2})(?::(\d{2})(?:\.(\d{1,9}))?)?)?(Z|[+-]\d{2}(?::?\d{2})?)?$/i;

/**
 * Parses an ISO 8601 date or date-time to epoch milliseconds. Without an offset the time is
 * taken as UTC (blob timestamps are UTC), so a naive date can never be compared against an
 * aware one. Returns null for anything else, including impossible dates (2024-02-30).
 */
export function parseIsoInstant(text: string): number | null {
  const m = ISO_RE.exec(text.trim());
  if (!m) return null;
  const [, y, mo, d, h = '0', mi = '0', s = '0', frac = '', tz = 'Z'] = m;
  const year = Number(y),
    month = Number(mo),
    day = Number(d),
    hour = Number(h),
    minute = Number(mi),
    second = Number(s);
  if (month < 1 || month > 12 || hour > 23 || minute > 59 || second > 59) return null;
  const daysInMonth = new Date(Date.UTC(year, month, 0)).getUTCDate();
  if (day < 1 || day > daysInMonth) return null;
  let offsetMin = 0;
  if (tz.toUpperCase() !== 'Z') {
    const sign = tz.startsWith('-') ? -1 : 1;
    const digits = tz.slice(1).replace(':', '');
    const oh = Number(digits.slice(0, 2)),
      om = Number(digits.slice(2) || '0');
    if (oh > 23 || om > 59) return null;
    offsetMin = sign * (oh * 60 + om);
  }
  const ms = Number((frac + '000').slice(0, 3));
  const utc = Date.UTC(year, month - 1, day, hour, minute, second, ms);
  // Date.UTC maps years 0-99 to 1900-1999.
  const fixed = year < 100 ? new Date(utc).setUTCFullYear(year) : utc;
  return fixed - offsetMin * 60_000;
}

/** zod schema: an ISO 8601 date/date-time string, normalised to `YYYY-MM-DDTHH:mm:ss.sssZ`. */
export const isoInstantSchema = z.string().transform((v, ctx) => {
  const t = parseIsoInstant(v);
  if (t === null) {
    ctx.addIssue({
      code: 'custom',
      message: `${JSON.stringify(v)} is not an ISO 8601 date or date-time (e.g. 2024-05-01 or 2024-05-01T12:00:00+02:00)`,
    });
    return z.NEVER;
  }
  return new Date(t).toISOString();
});
