import gdal from 'gdal-async';
import { z } from 'zod';
import { permanentError, TaskError, type Services } from '@coremachine/core-machine';
import {
  decodeRaw,
  detectSingleByte,
  RAW_BYTES_ENCODING,
  REPLACEMENT_CHAR,
  sampleNonAscii,
  type SampledText,
} from '@coremachine/geo/vector';
import type { Params } from './params.ts';
import { openSource, type OpenedSource } from './source.ts';

/** Features whose text prepare checks (the load tasks catch what lies beyond, see encodingFailure). */
export const ENCODING_SAMPLE = 5000;

/** How the source's text was decoded: the encoding GDAL was told (null: its own reading) and why. */
export const textEncoding = z.object({
  /** The encoding the text was read in (`UTF-8`, `ISO-8859-1`, `CP1252` ...), null when not known. */
  name: z.string().nullable(),
  /** `parameter` (encoding), `cpg` (the .cpg sidecar), `detected` (no declaration), `utf-8` (text already UTF-8 or ASCII). */
  source: z.enum(['parameter', 'cpg', 'detected', 'utf-8']),
  /** The open option given to GDAL for every read of the source (null: none). */
  gdal: z.string().nullable(),
});
export type TextEncoding = z.infer<typeof textEncoding>;

const CANDIDATES = ['UTF-8', 'ISO-8859-1', 'CP1252', 'ISO-8859-15', 'CP1250', 'CP1251', 'CP1253'];

const TEXT_SAMPLED_DRIVERS = ['ESRI Shapefile', 'CSV'];

const isShapefile = (src: OpenedSource) => src.driver === 'ESRI Shapefile';

function hasCpg(path: string): boolean {
  const stem = path.replace(/\.shp$/i, '');
  for (const ext of ['.cpg', '.CPG']) {
    try {
      gdal.fs.stat(stem + ext);
      return true;
    } catch {
      /* absent */
    }
  }
  return false;
}

const blobOf = (params: Params) => `${params.container_name}/${params.blob_name}`;

function invalidError(params: Params, bad: SampledText, suggestion: string | null, declared: string) {
  return permanentError(
    'ENCODING_INVALID',
    `Column ${JSON.stringify(bad.field)} of ${blobOf(params)} is not ${declared} text (feature ${bad.fid}); ` +
      (suggestion
        ? `it reads as ${suggestion}: set encoding to ${suggestion}`
        : 'set encoding to the encoding of its attribute table (e.g. CP1252, ISO-8859-1, CP1251)'),
    { column: bad.field, fid: bad.fid, suggested_encoding: suggestion },
  );
}

/**
 * Decides how the source's text is read, in prepare, from the first ENCODING_SAMPLE features:
 * the `encoding` parameter wins; a shapefile's declared encoding (.cpg) is used when its text
 * decodes; a shapefile without a declaration whose text is not UTF-8 is read in the usual
 * single-byte encoding it is in (ISO-8859-1 or CP1252, reported with a warning). Text that does
 * not decode and cannot be told fails permanently (ENCODING_INVALID / ENCODING_UNDETECTED),
 * naming the column and suggesting `encoding`.
 */
export async function resolveEncoding(
  params: Params,
  services: Services,
  src: OpenedSource,
  signal: AbortSignal | undefined,
  warnings: string[],
): Promise<TextEncoding> {
  if (params.encoding) return { name: params.encoding, source: 'parameter', gdal: params.encoding };
  // Formats whose text is UTF-8 by definition (GeoPackage, GeoJSON, FlatGeobuf, KML, GML) are not
  // sampled: only DBF and CSV text comes in whatever encoding its writer used.
  if (!TEXT_SAMPLED_DRIVERS.includes(src.driver)) return { name: 'UTF-8', source: 'utf-8', gdal: null };
  const sample = sampleNonAscii(src.layer, ENCODING_SAMPLE);
  const bad = sample.filter((s) => s.value.includes(REPLACEMENT_CHAR));
  const shp = isShapefile(src);
  const cpg = shp && hasCpg(src.path);
  if (!sample.length) return { name: 'UTF-8', source: cpg ? 'cpg' : 'utf-8', gdal: null };
  if (!shp) {
    if (bad[0]) throw invalidError(params, bad[0], null, 'UTF-8');
    return { name: 'UTF-8', source: 'utf-8', gdal: null };
  }
  // The raw bytes of the same values, in the same order.
  const raw = await openSource({ ...params, encoding: RAW_BYTES_ENCODING }, services, signal, {
    expectedEtag: src.etag,
  });
  let rawSample: SampledText[];
  try {
    rawSample = sampleNonAscii(raw.layer, ENCODING_SAMPLE);
  } finally {
    raw.close();
  }
  const detected = detectSingleByte(rawSample.map((s) => s.value));
  if (!bad.length) {
    // GDAL decoded everything: name the encoding it used when the bytes tell it.
    const name = CANDIDATES.find((c) => rawSample.every((r, i) => decodeRaw(r.value, c) === sample[i]?.value)) ?? null;
    return { name, source: cpg ? 'cpg' : 'utf-8', gdal: null };
  }
  if (cpg) throw invalidError(params, bad[0]!, detected, 'in the encoding its .cpg declares');
  if (!detected) {
    const b = bad[0]!;
    throw permanentError(
      'ENCODING_UNDETECTED',
      `Column ${JSON.stringify(b.field)} of ${blobOf(params)} is not UTF-8 and declares no encoding (no .cpg), and its text is not in a usual single-byte encoding (ISO-8859-1, CP1252): set encoding (e.g. CP1251, CP850)`,
      { column: b.field, fid: b.fid },
    );
  }
  warnings.push(
    `${blobOf(params)} declares no encoding (no .cpg) and its text is not UTF-8: read as ${detected}; set encoding to read it in another`,
  );
  return { name: detected, source: 'detected', gdal: detected };
}

/**
 * The permanent error for a chunk that failed to load because of text that is not UTF-8 (beyond
 * prepare's sample; PostgreSQL refuses it, and GDAL reports only that the translation stopped):
 * the chunk's features are read again, and the first with undecodable text names the column.
 * Null when the chunk's text is sound (the failure is another one).
 */
export function encodingFailure(
  err: unknown,
  layer: gdal.Layer,
  where: string | null,
  params: Params,
  encodingName: string | null,
): Error | null {
  if (err instanceof TaskError) return null;
  const bad = sampleNonAscii(layer, Number.MAX_SAFE_INTEGER, where ?? '1 = 1').find((s) =>
    s.value.includes(REPLACEMENT_CHAR),
  );
  return bad ? invalidError(params, bad, null, encodingName ?? 'UTF-8') : null;
}
