import { mkdtemp, open, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import gdal from 'gdal-async';
import type { Pool } from 'pg';
import { z } from 'zod';
import {
  defineStage,
  outputsOf,
  permanentError,
  quoteIdent,
  quoteLiteral,
  TaskError,
  type TaskContext,
} from '@coremachine/core-machine';
import { getCollection, upsertCollection, upsertItem, type StacItem } from '@coremachine/geo/stac';
import {
  gdalPgConnection,
  listPublishedTables,
  tableColumns,
  type PublishedTable,
  type TableColumn,
} from '@coremachine/geo/vector';
import { atGdalBoundary } from '@coremachine/geo';
import '@coremachine/storage';
import { FORMATS, outputBlob, type Params } from './params.ts';

const stage = defineStage<Params>();

/** Layer of the part files (and of the output): the table's name. */
const PART_FID = 'cm_part_fid';

const tableSql = (t: { schema: string; table: string }) => `${quoteIdent(t.schema)}.${quoteIdent(t.table)}`;
const pgOf = (db: Pool) =>
  gdalPgConnection((db as unknown as { options: { connectionString: string } }).options.connectionString);

/** SQL conditions of the parameters' bbox and `where`, on alias `t` (literals, for GDAL's -sql). */
function filterSql(p: Params, t: PublishedTable, columns: readonly TableColumn[]): string[] {
  const out: string[] = [];
  const names = new Set([t.key, ...columns.map((c) => c.name)]);
  for (const c of p.where ?? []) {
    if (!names.has(c.column))
      throw permanentError(
        'COLUMN_NOT_FOUND',
        `where: ${t.schema}.${t.table} has no column ${JSON.stringify(c.column)}; its columns are: ${[...names].join(', ')}`,
        { column: c.column },
      );
    const col = `t.${quoteIdent(c.column)}`;
    if (c.value === null) {
      if (c.op !== '=' && c.op !== '<>')
        throw permanentError('WHERE_INVALID', `where: ${c.column} ${c.op} null compares nothing; use = or <>`);
      out.push(`${col} is ${c.op === '=' ? '' : 'not '}null`);
    } else {
      const v = typeof c.value === 'string' ? quoteLiteral(c.value) : String(c.value);
      out.push(`${col} ${c.op} ${v}`);
    }
  }
  if (p.bbox) {
    const [w, s, e, n] = p.bbox;
    const g = `t.${quoteIdent(t.geometry)}`;
    const box = (a: number, b: number) => {
      const env = `ST_MakeEnvelope(${a}, ${s}, ${b}, ${n}, 4326)`;
      const inTable = t.srid && t.srid !== 4326 ? `ST_Transform(${env}, ${t.srid})` : env;
      return `(${g} && ${inTable} and ST_Intersects(${g}, ${inTable}))`;
    };
    out.push(w <= e ? box(w, e) : `(${box(w, 180)} or ${box(-180, e)})`);
  }
  return out;
}

async function publishedTable(p: Params, db: Pool, allowed: readonly string[]): Promise<PublishedTable> {
  if (!allowed.includes(p.schema))
    throw permanentError(
      'SCHEMA_NOT_ALLOWED',
      `schema ${JSON.stringify(p.schema)} is not allowed; allowed: ${allowed.join(', ')}`,
      { allowed },
    );
  const [t] = await listPublishedTables(db, [p.schema], p.table_name);
  if (!t)
    throw permanentError(
      'TABLE_NOT_FOUND',
      `${p.schema}.${p.table_name} is not a published vector table (a table with a geometry column and a one-column primary key)`,
      { schema: p.schema, table: p.table_name },
    );
  return t;
}

const range = z.object({ index: z.int().nonnegative(), lo: z.string(), hi: z.string(), rows: z.int().positive() });
const tableInfo = z.object({
  schema: z.string(),
  table: z.string(),
  key: z.string(),
  key_type: z.string(),
  geometry: z.string(),
  srid: z.int(),
  columns: z.array(z.object({ name: z.string(), type: z.string() })),
});

/** Stage 1, one task: the table, its matching rows, and key ranges of `chunk_size` rows. */
export const plan = stage({
  name: 'plan',
  description: 'Check the table and filters, count the rows and cut them into key ranges',
  input: z.object({}),
  output: z.object({ table: tableInfo, rows: z.int().nonnegative(), ranges: z.array(range) }),
  plan: () => [{ key: 'plan', input: {} }],
  handler: async (_input, ctx) => {
    const p = ctx.params;
    const allowed = (ctx.services as { vector?: { schemas: string[] } }).vector?.schemas ?? ['geo'];
    const t = await publishedTable(p, ctx.db, allowed);
    const columns = await tableColumns(ctx.db, t);
    const filters = filterSql(p, t, columns);
    const k = `t.${quoteIdent(t.key)}`;
    const { rows } = await ctx.db.query<{ lo: string; hi: string; n: number }>(
      `select min(k)::text as lo, max(k)::text as hi, count(*)::int as n
         from (select ${k} as k, (row_number() over (order by ${k}) - 1) / ${p.chunk_size} as b
                 from ${tableSql(t)} t ${filters.length ? `where ${filters.join(' and ')}` : ''}) s
        group by b order by b`,
    );
    if (!rows.length)
      throw permanentError(
        'EXPORT_EMPTY',
        `No row of ${t.schema}.${t.table} matches the export's bbox and where: nothing to export`,
      );
    return {
      table: {
        schema: t.schema,
        table: t.table,
        key: t.key,
        key_type: t.keyType,
        geometry: t.geometry,
        srid: t.srid,
        columns,
      },
      rows: rows.reduce((a, r) => a + r.n, 0),
      ranges: rows.map((r, index) => ({ index, lo: r.lo, hi: r.hi, rows: r.n })),
    };
  },
});

type TableInfo = z.output<typeof tableInfo>;
const asPublished = (t: TableInfo): PublishedTable => ({
  schema: t.schema,
  table: t.table,
  key: t.key,
  keyType: t.key_type,
  geometry: t.geometry,
  srid: t.srid,
  geometryType: 'GEOMETRY',
  dimensions: 2,
  facts: null,
  estimatedRows: -1,
  version: '',
});

/** The folder of a job's part blobs, beside the output. */
const partsPrefix = (p: Params, jobId: string) => `${outputBlob(p)}.parts/${jobId.slice(0, 16)}/`;
const partBlob = (p: Params, jobId: string, index: number) =>
  `${partsPrefix(p, jobId)}part-${String(index).padStart(5, '0')}.gpkg`;

/** Attempts of the chunk and assemble tasks; after the last one the job fails. */
export const EXPORT_ATTEMPTS = 4;

/** Deletes every part blob of the job (all chunks'), e.g. when the job fails. */
async function deleteParts(ctx: TaskContext<Params>): Promise<void> {
  const { storage } = ctx.services;
  const container = ctx.params.container_name;
  const names: string[] = [];
  for await (const b of storage.list(container, { prefix: partsPrefix(ctx.params, ctx.jobId) })) names.push(b.name);
  for (const name of names) await storage.delete(container, name).catch(() => false);
}

/**
 * Runs a handler; when its error fails the job (permanent, or the last attempt), the job's part
 * blobs are deleted first: a failed export leaves nothing behind.
 */
async function deletingPartsOnFailure<O>(ctx: TaskContext<Params>, run: () => Promise<O>): Promise<O> {
  try {
    return await run();
  } catch (err) {
    if ((err instanceof TaskError && err.permanent) || ctx.attempt >= EXPORT_ATTEMPTS)
      await deleteParts(ctx).catch((e: unknown) =>
        ctx.log.warn('export_vector: the part blobs could not all be deleted', { error: (e as Error).message }),
      );
    throw err;
  }
}

/** Uploads a part; deleted again when the job failed meanwhile (its parts are being deleted). */
async function uploadPart(ctx: TaskContext<Params>, part: string, file: string, contentType: string): Promise<number> {
  const bytes = await ctx.services.storage.uploadFile(ctx.params.container_name, part, file, { contentType });
  if (ctx.signal.aborted) {
    await ctx.services.storage.delete(ctx.params.container_name, part).catch(() => false);
    throw ctx.signal.reason;
  }
  return bytes;
}

/**
 * Stage 2, one task per key range: GDAL reads the range from PostgreSQL (one query, in key
 * order) and writes it to a GeoPackage part, uploaded beside the output. Re-running a task
 * writes the same part again.
 */
export const exportChunk = stage({
  name: 'export_chunk',
  description: 'Write one key range of the table to a GeoPackage part in blob storage',
  input: z.object({ table: tableInfo, range }),
  output: z.object({ index: z.int(), rows: z.int(), part: z.string(), bytes: z.int(), table: tableInfo }),
  plan: (ctx) => {
    const [prev] = outputsOf(plan, ctx.previous);
    if (!prev) return [];
    return prev.output.ranges.map((r) => ({
      key: `chunk_${String(r.index).padStart(5, '0')}`,
      input: { table: prev.output.table, range: r },
    }));
  },
  retry: { maxAttempts: EXPORT_ATTEMPTS },
  handler: (input, ctx) => deletingPartsOnFailure(ctx, () => exportRange(input, ctx)),
});

async function exportRange(
  input: { table: TableInfo; range: z.output<typeof range> },
  ctx: TaskContext<Params>,
): Promise<{ index: number; rows: number; part: string; bytes: number; table: TableInfo }> {
  {
    const p = ctx.params;
    const t = asPublished(input.table);
    const k = `t.${quoteIdent(t.key)}`;
    const cast = t.keyType;
    const where = [
      ...filterSql(p, t, input.table.columns),
      `${k} >= ${quoteLiteral(input.range.lo)}::${cast}`,
      `${k} <= ${quoteLiteral(input.range.hi)}::${cast}`,
    ];
    const g = `t.${quoteIdent(t.geometry)}`;
    const geom = t.srid && t.srid !== 4326 ? `ST_Transform(${g}, 4326)` : g;
    const cols = [
      k,
      ...input.table.columns.map((c) => `t.${quoteIdent(c.name)}`),
      `${geom} as ${quoteIdent(t.geometry)}`,
    ];
    const sql = `select ${cols.join(', ')} from ${tableSql(t)} t where ${where.join(' and ')} order by ${k}`;
    const dir = await mkdtemp(join(tmpdir(), 'cm-export-'));
    try {
      if (p.format === 'geojson') {
        // GeoJSON is written by PostgreSQL: ST_AsGeoJSON prints the shortest digits that read back
        // as the same double (GDAL's writer rounds some), properties in table order, types kept.
        const file = join(dir, 'part.geojsonl');
        const props = input.table.columns.length
          ? `(select row_to_json(q) from (select ${[k, ...input.table.columns.map((c) => `t.${quoteIdent(c.name)}`)].join(', ')}) q)`
          : `json_build_object(${quoteLiteral(t.key)}, ${k})`;
        const { rows } = await ctx.db.query<{ f: string }>(
          `select json_build_object('type', 'Feature', 'properties', ${props},
                  'geometry', st_asgeojson(${geom}, 20)::json)::text as f
             from ${tableSql(t)} t where ${where.join(' and ')} order by ${k}`,
        );
        await writeFile(file, rows.map((r) => r.f).join(',\n'));
        const part = partBlob(p, ctx.jobId, input.range.index).replace(/\.gpkg$/, '.geojsonl');
        const bytes = await uploadPart(ctx, part, file, 'application/geo+json-seq');
        return { index: input.range.index, rows: input.range.rows, part, bytes, table: input.table };
      }
      const file = join(dir, 'part.gpkg');
      const src = gdal.drivers.get('PostgreSQL').open(pgOf(ctx.db), 'r', [`TABLES=${t.schema}.${t.table}`]);
      try {
        const out = await atGdalBoundary(
          { file: `${t.schema}.${t.table}`, paths: { [dir]: 'part' }, action: 'exporting' },
          () =>
            gdal.vectorTranslateAsync(file, src, [
              '-f',
              'GPKG',
              '-sql',
              sql,
              '-nln',
              t.table,
              '-lco',
              `FID=${PART_FID}`,
              '-lco',
              'SPATIAL_INDEX=NO',
              '-gt',
              '65536',
            ]),
        );
        out.close();
      } finally {
        src.close();
      }
      const part = partBlob(p, ctx.jobId, input.range.index);
      const bytes = await uploadPart(ctx, part, file, FORMATS.gpkg.type);
      return { index: input.range.index, rows: input.range.rows, part, bytes, table: input.table };
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  }
}

const escapeXml = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');

/** The STAC collection of exports, created when missing. */
async function ensureCollection(db: Pool, schema: string, id: string): Promise<void> {
  if (await getCollection(db, schema, id)) return;
  await upsertCollection(db, schema, {
    type: 'Collection',
    stac_version: '1.0.0',
    id,
    title: 'Vector exports',
    description: 'Files written by export_vector from PostGIS tables (GeoPackage, FlatGeobuf, GeoJSON).',
    license: 'proprietary',
    keywords: ['vector', 'export'],
    extent: { spatial: { bbox: [[-180, -90, 180, 90]] }, temporal: { interval: [[null, null]] } },
    links: [],
  });
}

const itemId = (p: Params) =>
  `export-${p.schema}-${p.table_name}-${p.format}${
    p.bbox || p.where?.length
      ? `-${outputBlob(p)
          .replace(/[^A-Za-z0-9._-]/g, '_')
          .slice(-40)}`
      : ''
  }`;

/**
 * Stage 3, one task: the parts, in key order, become the output file (one GDAL translation of
 * their union), uploaded to `blob_name`; the parts are deleted and the export's STAC item is
 * written (asset href: the blob's stable URL, never a SAS).
 */
export const assemble = stage({
  name: 'assemble',
  description: 'Assemble the parts into the output file, upload it and register its STAC item',
  input: z.object({
    table: tableInfo,
    rows: z.int(),
    parts: z.array(z.object({ index: z.int(), part: z.string() })),
  }),
  output: z.object({
    blob: z.string(),
    url: z.string(),
    bytes: z.int(),
    rows: z.int(),
    bbox: z.array(z.number()).nullable(),
    item_id: z.string(),
  }),
  plan: (ctx) => {
    const parts = outputsOf(exportChunk, ctx.previous).sort((x, y) => x.output.index - y.output.index);
    const first = parts[0];
    if (!first) return [];
    return [
      {
        key: 'assemble',
        input: {
          table: first.output.table,
          rows: parts.reduce((n, x) => n + x.output.rows, 0),
          parts: parts.map((x) => ({ index: x.output.index, part: x.output.part })),
        },
      },
    ];
  },
  retry: { maxAttempts: EXPORT_ATTEMPTS },
  handler: (input, ctx) => deletingPartsOnFailure(ctx, () => assembleParts(input, ctx)),
});

async function assembleParts(
  input: { table: TableInfo; rows: number; parts: { index: number; part: string }[] },
  ctx: TaskContext<Params>,
): Promise<{ blob: string; url: string; bytes: number; rows: number; bbox: number[] | null; item_id: string }> {
  {
    const p = ctx.params;
    const fmt = FORMATS[p.format];
    const { parts } = input;
    const dir = await mkdtemp(join(tmpdir(), 'cm-export-'));
    try {
      const files: string[] = [];
      for (const part of parts) {
        const file = join(dir, `part-${part.index}.${p.format === 'geojson' ? 'geojsonl' : 'gpkg'}`);
        await ctx.services.storage.downloadToFile(p.container_name, part.part, file);
        files.push(file);
      }
      const layer = input.table.table;
      const out = join(dir, `out.${fmt.ext}`);
      if (p.format === 'geojson') await concatGeoJson(out, layer, files);
      else await translateParts(out, layer, files, dir, input.table, p);
      const blob = outputBlob(p);
      const bytes = (await stat(out)).size;
      await ctx.services.storage.uploadFile(p.container_name, blob, out, { contentType: fmt.type });
      const t = asPublished(input.table);
      const { rows } = await ctx.db.query<{ a: number | null; b: number; c: number; d: number }>(
        `select st_xmin(e) a, st_ymin(e) b, st_xmax(e) c, st_ymax(e) d from (select st_extent(${
          t.srid && t.srid !== 4326 ? `st_transform(t.${quoteIdent(t.geometry)}, 4326)` : `t.${quoteIdent(t.geometry)}`
        })::box2d e from ${tableSql(t)} t ${(() => {
          const f = filterSql(p, t, input.table.columns);
          return f.length ? `where ${f.join(' and ')}` : '';
        })()}) s`,
      );
      const r = rows[0];
      const bbox = r && r.a !== null ? [r.a, r.b, r.c, r.d] : null;
      const url = ctx.services.storage.blobUrl(p.container_name, blob);
      const stac = ctx.services.stac;
      const id = itemId(p);
      await ensureCollection(ctx.db, stac.schema, p.stac_collection);
      const item: StacItem = {
        type: 'Feature',
        stac_version: '1.0.0',
        stac_extensions: [],
        id,
        collection: p.stac_collection,
        geometry: bbox
          ? {
              type: 'Polygon',
              coordinates: [
                [
                  [bbox[0]!, bbox[1]!],
                  [bbox[2]!, bbox[1]!],
                  [bbox[2]!, bbox[3]!],
                  [bbox[0]!, bbox[3]!],
                  [bbox[0]!, bbox[1]!],
                ],
              ],
            }
          : null,
        ...(bbox ? { bbox: bbox as [number, number, number, number] } : {}),
        properties: {
          datetime: new Date().toISOString(),
          title: `${t.schema}.${t.table} as ${fmt.driver}`,
          'coremachine:source_table': `${t.schema}.${t.table}`,
          'coremachine:row_count': input.rows,
          'coremachine:format': p.format,
          ...(p.bbox ? { 'coremachine:filter_bbox': p.bbox } : {}),
          ...(p.where?.length ? { 'coremachine:filter_where': p.where } : {}),
        },
        links: [],
        assets: {
          data: { href: url, type: fmt.type, roles: ['data'], title: `${t.table}.${fmt.ext}`, 'file:size': bytes },
        },
      };
      await upsertItem(ctx.db, stac.schema, item);
      // The parts last: a retry of this task (any step above failing) finds them still there.
      for (const part of parts) await ctx.services.storage.delete(p.container_name, part.part).catch(() => false);
      return { blob, url, bytes, rows: input.rows, bbox, item_id: id };
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  }
}

/** The GeoJSON output: the parts' features (comma-separated JSON texts) in one FeatureCollection. */
async function concatGeoJson(out: string, layer: string, files: readonly string[]): Promise<void> {
  const fh = await open(out, 'w');
  try {
    await fh.write(`{"type":"FeatureCollection","name":${JSON.stringify(layer)},"features":[\n`);
    let first = true;
    for (const f of files) {
      const text = await readFile(f);
      if (!text.length) continue;
      if (!first) await fh.write(',\n');
      await fh.write(text);
      first = false;
    }
    await fh.write('\n]}\n');
  } finally {
    await fh.close();
  }
}

/** GeoPackage and FlatGeobuf outputs: one GDAL translation of the parts' union (a VRT). */
async function translateParts(
  out: string,
  layer: string,
  files: readonly string[],
  dir: string,
  table: TableInfo,
  p: Params,
): Promise<void> {
  const fmt = FORMATS[p.format];
  let source = files[0]!;
  if (files.length > 1) {
    source = join(dir, 'union.vrt');
    await writeFile(
      source,
      `<OGRVRTDataSource><OGRVRTUnionLayer name="${escapeXml(layer)}">${files
        .map(
          (f, i) =>
            `<OGRVRTLayer name="p${i}"><SrcDataSource>${escapeXml(f)}</SrcDataSource><SrcLayer>${escapeXml(layer)}</SrcLayer></OGRVRTLayer>`,
        )
        .join('')}</OGRVRTUnionLayer></OGRVRTDataSource>`,
    );
  }
  // The key becomes the GeoPackage's FID (its values kept), so a re-load keeps it.
  const integerKey = /^(smallint|integer|bigint)$/.test(table.key_type);
  const lco = p.format === 'gpkg' && integerKey ? ['-lco', `FID=${table.key}`] : [];
  const file = `${p.container_name}/${outputBlob(p)}`;
  const src = await atGdalBoundary({ file, paths: { [dir]: 'parts' } }, () => gdal.openAsync(source));
  try {
    const ds = await atGdalBoundary({ file, paths: { [dir]: 'parts' }, action: 'assembling' }, () =>
      gdal.vectorTranslateAsync(out, src, ['-f', fmt.driver, '-nln', layer, ...lco, layer]),
    );
    ds.close();
  } finally {
    src.close();
  }
}
