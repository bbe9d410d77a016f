import { classifyError, registerErrorCodes, TaskError } from '@coremachine/core-machine';

/**
 * Classification of the errors GDAL and PROJ raise, made once at the GDAL boundary so that every
 * job treats them alike:
 * - about the data (format not recognised or not supported, illegal argument, a readable object
 *   that fails to open or decode, a CRS PROJ cannot transform): permanent, retrying gives the
 *   same answer;
 * - about the way to the data (I/O errors, HTTP 5xx, timeouts, throttling, connection
 *   failures): transient, retried with backoff;
 * - anything else: transient (one retry too many is cheaper than a lost file), with GDAL's
 *   message as the cause rather than a stack.
 *
 * gdal-async turns a failed GDAL call into an `Error` whose message is CPLGetLastErrorMsg():
 * the CPLE class number is not kept, so the classification reads the message.
 */
export type GdalErrorKind =
  /** No driver recognises the bytes, or the driver does not support what the file uses. */
  | 'unsupported'
  /** The file is recognised but its content is invalid, truncated or corrupt. */
  | 'corrupt'
  /** An argument GDAL refuses (an option, a band, a window): the same call fails again. */
  | 'illegal_argument'
  /** PROJ cannot relate the CRSs (local/engineering CRS, no operation, bad definition). */
  | 'crs'
  /** The object does not exist (404, no such file). */
  | 'not_found'
  /** HTTP 5xx from the storage. */
  | 'http'
  /** Throttling (HTTP 429/503 Server Busy, SlowDown). */
  | 'throttled'
  /** Timeouts. */
  | 'timeout'
  /** Connection, DNS, TLS, socket failures and local I/O errors (disk full, EIO). */
  | 'io'
  /** Out of memory: the worker may have more room on the next attempt. */
  | 'memory'
  /** Nothing above: transient, message kept as the cause. */
  | 'unclassified';

export interface GdalErrorClassification {
  kind: GdalErrorKind;
  permanent: boolean;
  /** GDAL's message with GDAL/local paths replaced (see {@link GdalErrorContext.paths}). */
  message: string;
}

/** Default task error code per kind. */
export const GDAL_ERROR_CODES: Readonly<Record<GdalErrorKind, string>> = {
  unsupported: 'UNSUPPORTED_FORMAT',
  corrupt: 'FILE_UNREADABLE',
  illegal_argument: 'GDAL_ILLEGAL_ARGUMENT',
  crs: 'CRS_TRANSFORM_FAILED',
  not_found: 'BLOB_NOT_FOUND',
  http: 'STORAGE_UNAVAILABLE',
  throttled: 'STORAGE_UNAVAILABLE',
  timeout: 'STORAGE_TIMEOUT',
  io: 'GDAL_IO_ERROR',
  memory: 'GDAL_OUT_OF_MEMORY',
  unclassified: 'GDAL_ERROR',
};

// The codes of this module and of the raster and STAC builders in core-machine's code table
// (meaning, permanence, HTTP status); codes the table already has keep their entry.
registerErrorCodes({
  GDAL_ILLEGAL_ARGUMENT: { meaning: 'GDAL refused an argument for this file', permanent: true, httpStatus: 422 },
  CRS_TRANSFORM_FAILED: { meaning: 'PROJ cannot transform the CRS of the data', permanent: true, httpStatus: 422 },
  CRS_NOT_GEOREFERENCED: {
    meaning: 'the CRS is a local engineering CRS with no relation to the Earth (give input_crs)',
    permanent: true,
    httpStatus: 422,
  },
  GDAL_IO_ERROR: { meaning: 'GDAL hit an I/O or connection error (retried)', permanent: false, httpStatus: 503 },
  GDAL_OUT_OF_MEMORY: { meaning: 'GDAL ran out of memory (retried)', permanent: false, httpStatus: 503 },
  GDAL_ERROR: { meaning: 'GDAL failed with an unclassified error (retried)', permanent: false, httpStatus: 500 },
});

const PERMANENT: ReadonlySet<GdalErrorKind> = new Set([
  'unsupported',
  'corrupt',
  'illegal_argument',
  'crs',
  'not_found',
]);

// Order matters: the transient rules come first, so that "IReadBlock failed ... HTTP error
// code: 503" is a 5xx and not a corrupt tile.
const RULES: ReadonlyArray<readonly [GdalErrorKind, RegExp]> = [
  ['throttled', /\b429\b|throttl|server ?busy|slow ?down|too ?many ?requests|rate.?limit/i],
  ['timeout', /timed? ?out|timeout|deadline exceeded/i],
  [
    'http',
    /HTTP[^\n]{0,40}?\b5\d\d\b|\b5\d\d\b[^\n]{0,20}(internal server error|bad gateway|service unavailable|gateway)/i,
  ],
  [
    'io',
    /curl|could not resolve|couldn't (resolve|connect)|connection (refused|reset|closed|aborted)|connection|ECONNRESET|ECONNREFUSED|EPIPE|EAI_AGAIN|ENOTFOUND|socket|\bSSL\b|\bTLS\b|network|I\/O error|input\/output error|EIO\b|no space left|ENOSPC|disk full|write error|HTTP error code ?: ?(0|401|403|408)\b/i,
  ],
  ['memory', /out of memory|cannot allocate|failed to allocate|ENOMEM|std::bad_alloc/i],
  ['not_found', /no such file|does not exist|\b404\b|not found in the container|BlobNotFound|ContainerNotFound/i],
  [
    'crs',
    /cannot find coordinate operations?|coordinate operation|no coordinate operation|PROJ:|proj_create|cannot (transform|reproject)|transformation (failed|is not possible)|failed to (create|compute) (a )?(coordinate )?transform|unable to compute a transformation|ENGCRS|LOCAL_CS|not georeferenced|invalid (SRS|CRS|projection)|unknown (projection|datum|ellipsoid)|failed to process SRS|Error transforming point/i,
  ],
  [
    'unsupported',
    /not recogni[sz]ed as (being in )?a supported|not supported|unsupported|no driver|is not a (raster|vector|dataset)|does not support|not handled/i,
  ],
  [
    'illegal_argument',
    /illegal|invalid (argument|value|option|band|window|parameter)|out of range|access window out of range|bad argument/i,
  ],
  [
    'corrupt',
    /not a TIFF|TIFFRead|TIFFFetch|TIFFFill|IReadBlock failed|read error at|corrupt|truncated|invalid (file|header|data|format|tile|strip|offset|tag)|unexpected end|bad (magic|header)|decod|cannot open|failed to open|open failed|unable to open|checksum|premature end|JPEG ?(lib|error)|LZW|deflate|inflate|zlib|Decompress/i,
  ],
];

/** The message of whatever was thrown (gdal-async throws plain `Error`s). */
export function gdalMessage(err: unknown): string {
  if (err instanceof Error) return err.message || err.name;
  if (typeof err === 'string') return err;
  return String(err);
}

/**
 * Replaces the paths GDAL was given by the names a user knows: each key of `paths` by its value
 * (`/vsiaz/bronze/dem.tif` → `bronze/dem.tif`, a temp copy → its blob), then any other
 * absolute path that is left (a temp folder, /vsimem/) by its file name, so that no server path
 * reaches a stored error.
 */
export function scrubPaths(message: string, paths: Readonly<Record<string, string>> = {}): string {
  let out = message;
  // Longest first: a folder must not be replaced inside one of its files' paths.
  for (const from of Object.keys(paths).sort((a, b) => b.length - a.length)) {
    if (from) out = out.replaceAll(from, paths[from]!);
  }
  return out.replace(
    /(^|[\s'"`(=[,:])(\/(?:[^\s'"`/)\],:]+\/)+)([^\s'"`/)\],:]*)/g,
    (_m, lead: string, dir: string, base: string) => {
      if (dir.startsWith('/vsiaz/')) return `${lead}${dir.slice('/vsiaz/'.length)}${base}`;
      return `${lead}${base || dir.split('/').filter(Boolean).pop() || ''}`;
    },
  );
}

/** Classifies a GDAL/PROJ error (see the module comment). */
export function classifyGdalError(err: unknown, paths?: Readonly<Record<string, string>>): GdalErrorClassification {
  const raw = gdalMessage(err);
  const message = scrubPaths(raw, paths);
  for (const [kind, re] of RULES) {
    if (re.test(raw)) return { kind, permanent: PERMANENT.has(kind), message };
  }
  return { kind: 'unclassified', permanent: false, message };
}

/** True when a GDAL error speaks of the way to the data (network, storage, disk), not of the data: retry it. */
export function isTransientGdalError(err: unknown): boolean {
  return !classifyGdalError(err).permanent;
}

export interface GdalErrorContext {
  /** The file as the user knows it: `container/blob`. Every message starts with it. */
  file: string;
  /** Paths GDAL was given, mapped to what to say instead (`{ [tempPath]: 'bronze/dem.tif' }`). */
  paths?: Readonly<Record<string, string>>;
  /** Codes to use instead of {@link GDAL_ERROR_CODES} for some kinds (e.g. `{ corrupt: 'RASTER_UNREADABLE' }`). */
  codes?: Partial<Record<GdalErrorKind, string>>;
  /** What was being done, for the message: `reading`, `reprojecting`, ... (default: none). */
  action?: string;
  /** Extra structured detail to store with the error. */
  detail?: Record<string, unknown>;
}

/**
 * An error GDAL did not raise keeps its own classification instead of being read as GDAL's
 * message (a PostgreSQL "relation … does not exist" is not a missing blob): an error that already
 * carries a code (the storage client's, another package's) keeps its code and permanence, and a
 * PostgreSQL error (a SQLSTATE and a severity) is transient `CM_ERR_DATABASE_UNREACHABLE` when the
 * connection went away, else an unclassified `TASK_ERROR`. Null for anything else.
 */
function notFromGdal(err: unknown, context: GdalErrorContext): TaskError | null {
  const e = err as { message?: unknown; detail?: unknown; code?: unknown; severity?: unknown } | null;
  const raw = scrubPaths(gdalMessage(err), context.paths);
  const coded = classifyError(err);
  if (coded) {
    return new TaskError(coded.code, raw, {
      permanent: coded.permanent,
      ...(e?.detail !== undefined ? { detail: e.detail } : {}),
      cause: err,
    });
  }
  if (typeof e?.code === 'string' && /^[0-9A-Z]{5}$/.test(e.code) && typeof e.severity === 'string') {
    const lost = /^(08|57P0)/.test(e.code);
    const what = context.action ? `${context.action} ${context.file}` : context.file;
    return new TaskError(lost ? 'CM_ERR_DATABASE_UNREACHABLE' : 'TASK_ERROR', `${what}: PostgreSQL: ${raw}`, {
      permanent: false,
      detail: { file: context.file, sqlstate: e.code },
      cause: err,
    });
  }
  return null;
}

/**
 * The `TaskError` for a GDAL/PROJ failure: permanent or transient by {@link classifyGdalError},
 * message `<file>: <GDAL's message>` (no server path), detail `{ file, gdal, kind }`; the original
 * error is kept as `cause` (for the log), never stored. A `TaskError` passes through unchanged.
 * @example
 *   try { ds = await gdal.openAsync(vsiazPath(c, b)); }
 *   catch (err) { throw gdalTaskError(err, { file: `${c}/${b}` }); }
 */
export function gdalTaskError(err: unknown, context: GdalErrorContext): TaskError {
  if (err instanceof TaskError) return err;
  const foreign = notFromGdal(err, context);
  if (foreign) return foreign;
  const c = classifyGdalError(err, context.paths);
  const code = context.codes?.[c.kind] ?? GDAL_ERROR_CODES[c.kind];
  const gdal = c.message.replace(/\s+$/, '');
  const body = gdal.includes(context.file) ? gdal : `${context.file}: ${gdal}`;
  const message = context.action ? `${context.action} ${body}` : body;
  return new TaskError(code, message, {
    permanent: c.permanent,
    detail: { file: context.file, kind: c.kind, gdal, ...context.detail },
    cause: err,
  });
}

/**
 * Runs a GDAL call and turns what it throws into {@link gdalTaskError}.
 * @example
 *   const ds = await atGdalBoundary({ file: 'bronze/dem.tif' }, () => gdal.openAsync(path));
 */
export async function atGdalBoundary<T>(context: GdalErrorContext, call: () => Promise<T> | T): Promise<T> {
  try {
    return await call();
  } catch (err) {
    throw gdalTaskError(err, context);
  }
}
