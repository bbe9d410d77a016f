import gdal from 'gdal-async';

/**
 * Text encodings of attribute tables (DBF). GDAL recodes a shapefile's strings to UTF-8 from the
 * encoding its `.cpg` (or the DBF's language id) declares, or from the `ENCODING` open option;
 * with neither it passes the bytes through, and bytes that are not UTF-8 then reach PostgreSQL,
 * which refuses them. Opened with `ENCODING=ISO-8859-1`, GDAL maps every byte to the code point
 * of the same value: the strings then carry the raw bytes, from which the usual single-byte
 * encodings are told apart here.
 */

/** The encoding GDAL is told to read with to get the raw bytes back (one code point per byte). */
export const RAW_BYTES_ENCODING = 'ISO-8859-1';

/** U+FFFD: what a string decoded from bytes that are not UTF-8 holds in their place. */
export const REPLACEMENT_CHAR = '\uFFFD';

/** Bytes 0x80-0x9F that CP1252 leaves undefined. */
const CP1252_UNDEFINED = new Set([0x81, 0x8d, 0x8f, 0x90, 0x9d]);

/** The bytes of a string read with RAW_BYTES_ENCODING. */
export function rawBytes(raw: string): Uint8Array {
  const out = new Uint8Array(raw.length);
  for (let i = 0; i < raw.length; i++) out[i] = raw.charCodeAt(i) & 0xff;
  return out;
}

/** True when the bytes are valid UTF-8. */
export function isUtf8(bytes: Uint8Array): boolean {
  try {
    new TextDecoder('utf-8', { fatal: true }).decode(bytes);
    return true;
  } catch {
    return false;
  }
}

/**
 * Tells which usual single-byte Western encoding raw values are in: `CP1252` when a byte of
 * 0x80-0x9F is present and all of them are CP1252 characters (curly quotes, dashes, euro),
 * `ISO-8859-1` when none is (the two agree on every other byte), null when the bytes are not
 * Western text: a C1 byte CP1252 does not define, or values where most letters are high bytes
 * (Cyrillic, Greek, ... in their own code pages: a Western reading would garble them).
 */
export function detectSingleByte(raws: Iterable<string>): 'ISO-8859-1' | 'CP1252' | null {
  let c1 = false;
  for (const raw of raws) {
    const bytes = rawBytes(raw);
    let high = 0;
    let letters = 0;
    for (const b of bytes) {
      if (b >= 0x80 && b <= 0x9f) {
        if (CP1252_UNDEFINED.has(b)) return null;
        c1 = true;
      }
      // Letters: ASCII ones and the Latin-1 letter range 0xC0-0xFF (accented Latin letters,
      // and the Cyrillic, Greek ... letters of other code pages).
      if (b >= 0xc0) high++;
      if (b >= 0xc0 || (b >= 0x41 && b <= 0x5a) || (b >= 0x61 && b <= 0x7a)) letters++;
    }
    if (letters >= 4 && high / letters > 0.5) return null;
  }
  return c1 ? 'CP1252' : 'ISO-8859-1';
}

/** Decodes raw bytes as an encoding (ISO-8859-1, CP1252, UTF-8 or a WHATWG label); null when unknown. */
export function decodeRaw(raw: string, encoding: string): string | null {
  const e = encoding.toUpperCase().replace(/[_\s]/g, '-');
  if (e === 'ISO-8859-1' || e === 'LATIN1' || e === 'ISO8859-1' || e === '88591') return raw;
  const label = /^(CP|WINDOWS-?)?125\d$/.test(e) ? `windows-${e.slice(-4)}` : e;
  try {
    return new TextDecoder(label, { fatal: true }).decode(rawBytes(raw));
  } catch {
    return null;
  }
}

/** A string value of a sampled feature: its column (source field name) and text. */
export interface SampledText {
  field: string;
  fid: number;
  value: string;
}

/**
 * The non-ASCII string values of the first `limit` features of a layer (all string and
 * string-list fields), in read order, under an attribute filter (default none).
 */
export function sampleNonAscii(layer: gdal.Layer, limit: number, where: string | null = null): SampledText[] {
  const fields = layer.fields
    .map((f, i) => ({ name: f.name, type: f.type, i }))
    .filter((f) => f.type === gdal.OFTString || f.type === gdal.OFTStringList);
  const out: SampledText[] = [];
  if (!fields.length) return out;
  layer.setAttributeFilter(where);
  let n = 0;
  for (let f = layer.features.first(); f && n < limit; f = layer.features.next(), n++) {
    for (const field of fields) {
      const v: unknown = f.fields.get(field.i);
      const values = Array.isArray(v) ? v : [v];
      for (const value of values) {
        if (typeof value === 'string' && /[^\x00-\x7f]/.test(value)) out.push({ field: field.name, fid: f.fid, value });
      }
    }
  }
  if (where !== null) layer.setAttributeFilter(null);
  return out;
}
