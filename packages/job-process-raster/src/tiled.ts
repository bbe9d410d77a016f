import os from 'node:os';
import path from 'node:path';
import {
  isAbortReason,
  isCoreMachineError,
  type LedgerInfo,
  type PlanContext,
  type Logger,
  type Services,
  type TaskContext,
  type TaskSpec,
} from '@coremachine/core-machine';
import { gdalTaskError, useStorageForGdal } from '@coremachine/geo';
import {
  collarArgs,
  collarFor,
  compressionProblem,
  isEngineeringCrs,
  nodataSchema,
  categoryNamesOf,
  nodataToJson,
  openRaster,
  planGrid,
  rasterError,
  RESAMPLINGS,
  setCategoryNames,
  splitGrid,
  windowExtent,
  uncompressedBytes,
  writeWindow,
  type Compression,
  type GridSource,
  type Resampling,
} from '@coremachine/geo/raster';
import { vsiazPath, type BlobStorage } from '@coremachine/storage';
import gdal from 'gdal-async';
import { z } from 'zod';
import { tiledConfig, type TiledConfig } from './config.ts';
import { COG_CONTENT_TYPE, tileTarget, windowToCog } from './tiles.ts';

const MiB = 1024 * 1024;

export const gridSchema = z.object({
  crs: z.string(),
  geoTransform: z.tuple([z.number(), z.number(), z.number(), z.number(), z.number(), z.number()]),
  width: z.number().int().positive(),
  height: z.number().int().positive(),
});

export const windowSourceSchema = z.object({ container: z.string(), blob: z.string(), crs: z.string() });
export type WindowSource = z.output<typeof windowSourceSchema>;

/** Input of one window task: which pixels of the target grid, from which inputs, to which temporary blob. */
export const windowTaskInput = z.object({
  sources: z.array(windowSourceSchema).min(1),
  grid: gridSchema,
  window: z.object({
    key: z.string(),
    row: z.number().int(),
    col: z.number().int(),
    x: z.number().int(),
    y: z.number().int(),
    width: z.number().int().positive(),
    height: z.number().int().positive(),
  }),
  reproject: z.boolean(),
  resampling: z.enum(RESAMPLINGS),
  collar_args: z.array(z.string()),
  assign_crs: z.boolean(),
  tmp_container: z.string(),
  tmp_blob: z.string(),
  warp_memory_mb: z.number().int().positive(),
  /** The sources are tiles of a mosaic (process_raster_collection), not the grid itself. */
  mosaic: z.boolean().default(false),
  /** Output `tiles`: the window is written as a COG tile there, not to the temporary container. */
  tile: tileTarget.nullable().default(null),
  /** The source's category names per band (output `tiles`: written beside each tile, as `<tile>.aux.xml`). */
  category_names: z.array(z.array(z.string())).default([]),
});
export type WindowTaskInput = z.output<typeof windowTaskInput>;

export const windowTaskOutput = z.object({
  key: z.string(),
  blob: z.string(),
  bytes: z.number().int(),
  /** True when an earlier run had written the window already (a re-run of the job). */
  reused: z.boolean(),
  seconds: z.number(),
  /** Peak resident memory of the worker process so far (MB), measured when the window was done. */
  peak_rss_mb: z.number(),
});
export type WindowTaskOutput = z.output<typeof windowTaskOutput>;

/** What the assembly task of a tiled job is given besides the COG options. */
export const tiledAssembly = z.object({
  tmp_container: z.string(),
  tmp_prefix: z.string(),
  /** The windows' blob names in the temporary container, in key order. */
  windows: z.array(z.string()).min(1),
  reprojected: z.boolean(),
  collar: z.object({
    mask: z.enum(['none', 'source_nodata', 'source_alpha', 'nodata', 'alpha', 'mask']),
    nodata: nodataSchema,
  }),
  /** The source's category names per band ([] for a band without), for the COG's `.aux.xml` sidecar. */
  category_names: z.array(z.array(z.string())).default([]),
});
export type TiledAssembly = z.output<typeof tiledAssembly>;

/** The temporary prefix of a job's windows: `<job type>/<job id>/`. Deterministic: a re-run finds them. */
export function tmpPrefix(jobType: string, jobId: string): string {
  return `${jobType}/${jobId}/`;
}

/** Window side (pixels, a multiple of 64) whose uncompressed window fits the task's disk budget. */
export function windowSide(wanted: number, bands: number, dtype: string, diskMb: number): number {
  let side = wanted;
  while (side > 64 && uncompressedBytes(side, side, bands + 1, dtype) > diskMb * MiB) side -= 64;
  return side;
}

/** True when a source of this size takes the tiled path. */
export function isTiled(
  shape: readonly [number, number],
  bands: number,
  dtype: string,
  thresholdMb: number | undefined,
  config: TiledConfig = tiledConfig(),
): boolean {
  return uncompressedBytes(shape[1], shape[0], bands, dtype) >= (thresholdMb ?? config.thresholdMb) * MiB;
}

/** The tiled conversion planned once (in a task, so that its errors keep their codes and retries). */
export const tilingPlan = z.object({
  grid: gridSchema,
  /** Window side in pixels (the last row and column smaller). */
  window_size: z.number().int().positive(),
  reproject: z.boolean(),
  resampling: z.enum(RESAMPLINGS),
  collar: tiledAssembly.shape.collar,
  collar_args: z.array(z.string()),
  assign_crs: z.boolean(),
  tmp_container: z.string(),
  warp_memory_mb: z.number().int().positive(),
  window_count: z.number().int().positive(),
  /**
   * Category names (class labels) of the first source's bands, [] for a band without: a warp
   * drops them and a GeoTIFF cannot hold them, so the tiled outputs get them as the single
   * task's COG does, in a `.aux.xml` sidecar. Empty when no band has any.
   */
  category_names: tiledAssembly.shape.category_names,
});
export type TilingPlan = z.output<typeof tilingPlan>;

export interface PlanTilingOptions {
  sources: WindowSource[];
  targetCrs: string;
  compression: Compression;
  resampling: Resampling;
  /** Window side asked for (else the configured one); shrunk to the task disk budget. */
  windowSize?: number | undefined;
  /** Mark a collar as the single path does (process_raster); a mosaic of aligned inputs needs none. */
  collar: boolean;
  storage: BlobStorage;
  config?: TiledConfig;
}

/**
 * Plans the grid once (the one `gdalwarp` picks, see `planGrid`), the window side and the
 * collar. Checks the compression can hold the data.
 */
export async function planTiling(opts: PlanTilingOptions): Promise<TilingPlan> {
  const config = opts.config ?? tiledConfig();
  useStorageForGdal(opts.storage.config);
  const gridSources: GridSource[] = opts.sources.map((s) => ({
    path: vsiazPath(s.container, s.blob),
    label: `${s.container}/${s.blob}`,
    crs: s.crs,
  }));
  const first = gridSources[0]!;
  const ds = await openRaster(first.path, first.label);
  let collar: { mask: TiledAssembly['collar']['mask']; nodata: number | null } = { mask: 'none', nodata: null };
  try {
    const bands = ds.bands.count();
    const dtype = ds.bands.get(1).dataType ?? 'Byte';
    const problem = compressionProblem(opts.compression, dtype, bands);
    if (problem)
      throw rasterError(
        'COMPRESSION_UNSUPPORTED',
        `compression ${opts.compression} cannot be used for ${first.label}: ${problem}`,
      );
    const planned = await planGrid(gridSources, opts.targetCrs);
    const assignCrs = !planned.reproject && (ds.srs === null || isEngineeringCrs(ds.srs));
    if (planned.reproject && opts.collar) collar = await collarFor(ds, opts.compression, first.label, first.path);
    const side = windowSide(opts.windowSize ?? config.windowPx, bands, dtype, config.taskDiskMb);
    return {
      grid: planned.grid,
      window_size: side,
      reproject: planned.reproject,
      resampling: opts.resampling,
      collar: { mask: collar.mask, nodata: nodataToJson(collar.nodata) },
      collar_args: collarArgs(collar),
      assign_crs: assignCrs,
      tmp_container: config.tmpContainer,
      warp_memory_mb: config.warpMemoryMb,
      window_count: Math.ceil(planned.grid.width / side) * Math.ceil(planned.grid.height / side),
      category_names: bandCategoryNames(ds),
    };
  } catch (err) {
    if (isCoreMachineError(err)) throw err;
    throw gdalTaskError(err, { file: first.label, paths: { [first.path]: first.label } });
  } finally {
    ds.close();
  }
}

/**
 * Category names (GDAL CategoryNames, e.g. land-cover class labels) of each band, [] for a band
 * without; [] when no band has any.
 */
function bandCategoryNames(ds: gdal.Dataset): string[][] {
  const names = categoryNamesOf(ds);
  return names.some((n) => n.length) ? names : [];
}

/**
 * Gives the bands of a written GeoTIFF (a COG) their category names: GDAL keeps them in the
 * file's PAM sidecar, `<file>.aux.xml`, written as the dataset closes (opened read-only, so the
 * TIFF itself, and its COG layout, stay untouched). Returns the sidecar's path, or null when
 * there are no names to write.
 */
export async function writeCategorySidecar(file: string, names: readonly string[][]): Promise<string | null> {
  if (!names.some((n) => n.length)) return null;
  const ds = await gdal.openAsync(file);
  try {
    setCategoryNames(ds, names);
  } finally {
    ds.close();
  }
  return `${file}.aux.xml`;
}

/** One task per window of a tiling plan (no I/O: run by a stage's plan). Names are deterministic. */
export function windowTasks(
  plan: TilingPlan,
  sources: WindowSource[],
  jobType: string,
  jobId: string,
  mosaic?: { sourcesOf: (extent: number[]) => WindowSource[] },
  tiles?: { container: string; prefix: string; creationOptions: string[] },
): TaskSpec<WindowTaskInput>[] {
  const prefix = tmpPrefix(jobType, jobId);
  return splitGrid(plan.grid, plan.window_size).map((window) => ({
    key: window.key,
    input: {
      sources: mosaic ? mosaic.sourcesOf(windowExtent(plan.grid, window)) : sources,
      mosaic: mosaic !== undefined,
      tile: tiles
        ? {
            container: tiles.container,
            blob: `${tiles.prefix}${window.key}.tif`,
            creation_options: tiles.creationOptions,
          }
        : null,
      grid: plan.grid,
      window,
      reproject: plan.reproject,
      resampling: plan.resampling,
      collar_args: plan.collar_args,
      assign_crs: plan.assign_crs,
      tmp_container: plan.tmp_container,
      tmp_blob: `${prefix}${window.key}.tif`,
      warp_memory_mb: plan.warp_memory_mb,
      category_names: tiles ? plan.category_names : [],
    },
  }));
}

/** Whether an error ends the job (so its windows will never be assembled). */
function endsJob(err: unknown, attempt: number, maxAttempts: number, signal: AbortSignal): boolean {
  if (signal.aborted) return isAbortReason(signal.reason, 'cancelled') || isAbortReason(signal.reason, 'job_failed');
  if (isCoreMachineError(err) && err.permanent) return true;
  return attempt >= maxAttempts;
}

/** Window tasks run at most this often (first run included). */
export const WINDOW_MAX_ATTEMPTS = 3;

/**
 * Writes one window: skipped when its blob exists already (a re-run), else warped (or copied)
 * into the task's temporary folder and uploaded to the temporary container. When the job ends
 * here (a permanent error, the last attempt, cancel or failure elsewhere) the job's temporary
 * prefix is deleted, so no window outlives a job that will never assemble them.
 */
export async function runWindowTask(
  input: WindowTaskInput,
  ctx: Pick<
    TaskContext<unknown>,
    'services' | 'signal' | 'attempt' | 'jobId' | 'jobType' | 'tempDir' | 'log' | 'db' | 'ledger'
  >,
): Promise<WindowTaskOutput> {
  const started = performance.now();
  const { storage } = ctx.services;
  // Where this window's product goes: a temporary window, or (output `tiles`) a COG tile.
  const target = input.tile
    ? { container: input.tile.container, blob: input.tile.blob }
    : { container: input.tmp_container, blob: input.tmp_blob };
  const done = (bytes: number, reused: boolean): WindowTaskOutput => ({
    key: input.window.key,
    blob: target.blob,
    bytes,
    reused,
    seconds: Math.round(performance.now() - started) / 1000,
    peak_rss_mb: Math.round(process.resourceUsage().maxRSS / 1024),
  });
  try {
    await storage.ensureContainer(target.container);
    const existing = await storage.stat(target.container, target.blob, { signal: ctx.signal });
    if (existing.exists && existing.size > 0) {
      if (!input.tile) watchWindows(ctx, input.tmp_container);
      return done(existing.size, true);
    }
    useStorageForGdal(storage.config);
    const dir = await ctx.tempDir();
    const local = path.join(dir, `${input.window.key}.tif`);
    await writeWindow({
      sources: input.sources.map((s) => ({
        path: vsiazPath(s.container, s.blob),
        label: `${s.container}/${s.blob}`,
        crs: s.crs,
      })),
      grid: input.grid,
      window: input.window,
      reproject: input.reproject,
      resampling: input.resampling,
      collarArgs: input.collar_args,
      assignCrs: input.assign_crs,
      destination: local,
      warpMemoryMb: input.warp_memory_mb,
      threads: Math.max(1, os.availableParallelism()),
      mosaic: input.mosaic,
    });
    ctx.signal.throwIfAborted();
    let file = local;
    if (input.tile) {
      file = path.join(dir, `${input.window.key}_cog.tif`);
      await windowToCog(
        local,
        file,
        input.tile,
        input.sources.length === 1 ? `${input.sources[0]!.container}/${input.sources[0]!.blob}` : 'the mosaic',
      );
      // The class labels beside the tile, before it: a tile that exists has its sidecar (a re-run skips it).
      const sidecar = await writeCategorySidecar(file, input.category_names);
      if (sidecar)
        await storage.uploadFile(target.container, `${target.blob}.aux.xml`, sidecar, {
          contentType: 'application/xml',
          signal: ctx.signal,
        });
    }
    const bytes = await storage.uploadFile(target.container, target.blob, file, {
      contentType: input.tile ? COG_CONTENT_TYPE : 'image/tiff',
      signal: ctx.signal,
    });
    if (ctx.signal.aborted) {
      await storage.delete(target.container, target.blob).catch(() => false);
      if (input.tile) await storage.delete(target.container, `${target.blob}.aux.xml`).catch(() => false);
      ctx.signal.throwIfAborted();
    }
    // A cancel (or a failure elsewhere) committed while this window ran, too late for the abort
    // signal: once this handler returns no other may run, so the windows are removed here.
    if (await jobEnded(ctx)) {
      await deleteTmpPrefix(storage, input.tmp_container, tmpPrefix(ctx.jobType, ctx.jobId)).catch(() => 0);
      ctx.log.info('temporary windows deleted (the job ended)', { prefix: tmpPrefix(ctx.jobType, ctx.jobId) });
    } else if (!input.tile) watchWindows(ctx, input.tmp_container);
    return done(bytes, false);
  } catch (err) {
    if (endsJob(err, ctx.attempt, WINDOW_MAX_ATTEMPTS, ctx.signal)) {
      const prefix = tmpPrefix(ctx.jobType, ctx.jobId);
      const n = await deleteTmpPrefix(storage, input.tmp_container, prefix).catch(() => 0);
      ctx.log.info('temporary windows deleted (the job ends)', { prefix, deleted: n });
    }
    throw err;
  }
}

const quoted = (schema: string) => `"${schema.replace(/"/g, '""')}"`;

/** True when the ledger says the job failed or was cancelled. */
async function jobEnded(ctx: Pick<TaskContext<unknown>, 'db' | 'ledger' | 'jobId'>): Promise<boolean> {
  const { rows } = await ctx.db.query<{ status: string }>(
    `SELECT status FROM ${quoted(ctx.ledger.schema)}.jobs WHERE id = $1`,
    [ctx.jobId],
  );
  return rows[0]?.status === 'failed' || rows[0]?.status === 'cancelled';
}

/** How often a process checks the jobs whose windows it wrote (see {@link watchWindows}). */
export const WINDOW_WATCH_MS = 1_000;

interface WatchedJob {
  db: TaskContext<unknown>['db'];
  schema: string;
  jobId: string;
  storage: BlobStorage;
  container: string;
  prefix: string;
  log: Logger;
}

const watched = new Map<string, WatchedJob>();
/** Checks in a row that failed, per ledger: a ledger that stays unreachable this long is dropped. */
const watchFailures = new Map<string, number>();
const WATCH_MAX_FAILURES = 60;
let watchTimer: ReturnType<typeof setInterval> | null = null;
let watching = false;

/**
 * Keeps an eye on a job this process wrote a window of, until the job settles: a cancel (or a
 * failure) that lands between two windows, when no window runs to see it and no other task of
 * the job will ever run, still removes the job's temporary windows within about
 * {@link WINDOW_WATCH_MS}. One query per ledger each interval covers every watched job, and only
 * while there are any; the timer never keeps a process alive. A process that dies leaves the
 * windows to the sweep of the next tiled plan ({@link sweepTmp}).
 */
export function watchWindows(
  ctx: Pick<TaskContext<unknown>, 'services' | 'jobId' | 'jobType' | 'db' | 'ledger' | 'log'>,
  container: string,
): void {
  watched.set(`${ctx.ledger.schema}\u0000${ctx.jobId}`, {
    db: ctx.db,
    schema: ctx.ledger.schema,
    jobId: ctx.jobId,
    storage: ctx.services.storage,
    container,
    prefix: tmpPrefix(ctx.jobType, ctx.jobId),
    log: ctx.log,
  });
  if (!watchTimer) {
    watchTimer = setInterval(() => void checkWatched(), WINDOW_WATCH_MS);
    watchTimer.unref();
  }
}

/** The jobs watched now (`<schema>/<job id>`), for tests. */
export function watchedJobs(): string[] {
  return [...watched.values()].map((w) => `${w.schema}/${w.jobId}`);
}

async function checkWatched(): Promise<void> {
  if (watching) return;
  watching = true;
  try {
    const byLedger = new Map<string, WatchedJob[]>();
    for (const w of watched.values()) byLedger.set(w.schema, [...(byLedger.get(w.schema) ?? []), w]);
    for (const jobs of byLedger.values()) {
      const { db, schema } = jobs[0]!;
      let status: Map<string, string>;
      try {
        const { rows } = await db.query<{ id: string; status: string }>(
          `SELECT id, status FROM ${quoted(schema)}.jobs WHERE id = ANY($1::text[])`,
          [jobs.map((j) => j.jobId)],
        );
        status = new Map(rows.map((r) => [r.id, r.status]));
        watchFailures.delete(schema);
      } catch (err) {
        // The machine closed, its ledger is gone, or PostgreSQL stays away: nothing more to watch
        // there (the sweep remains). A passing failure (a restart) is tried again.
        const failures = (watchFailures.get(schema) ?? 0) + 1;
        watchFailures.set(schema, failures);
        const ended = /after calling end|does not exist/i.test(String((err as Error)?.message));
        if (ended || failures >= WATCH_MAX_FAILURES) {
          for (const j of jobs) watched.delete(`${j.schema}\u0000${j.jobId}`);
          watchFailures.delete(schema);
        }
        continue;
      }
      for (const j of jobs) {
        const s = status.get(j.jobId);
        if (s === 'processing' || s === 'queued') continue;
        watched.delete(`${j.schema}\u0000${j.jobId}`);
        if (s !== 'failed' && s !== 'cancelled') continue; // completed: the assembly removed them
        const n = await deleteTmpPrefix(j.storage, j.container, j.prefix).catch(() => 0);
        if (n)
          j.log.info('temporary windows deleted (the job ended between windows)', { prefix: j.prefix, deleted: n });
      }
    }
  } finally {
    watching = false;
    if (!watched.size && watchTimer) {
      clearInterval(watchTimer);
      watchTimer = null;
    }
  }
}

/** Deletes every blob under `prefix` in `container`; returns how many. A missing container holds none. */
export async function deleteTmpPrefix(storage: BlobStorage, container: string, prefix: string): Promise<number> {
  if (!(await storage.containerExists(container))) return 0;
  let n = 0;
  for await (const page of storage.listPages(container, { prefix })) {
    for (const blob of page) if (await storage.delete(container, blob.name)) n++;
  }
  return n;
}

/**
 * The sweep: deletes the temporary windows of jobs of `jobType` of this ledger that failed or were
 * cancelled (a worker that died before its cleanup, a cancel while no window ran). Prefixes of
 * job ids the ledger does not know are left alone (another ledger may share the storage). Run by
 * every tiled plan; returns the prefixes deleted.
 */
export async function sweepTmp(
  ctx: { db: PlanContext<unknown>['db']; ledger: LedgerInfo; services: Services; log: Logger },
  jobType: string,
  config: TiledConfig = tiledConfig(),
): Promise<string[]> {
  const { storage } = ctx.services;
  if (!(await storage.containerExists(config.tmpContainer))) return [];
  const prefixes: string[] = [];
  for await (const page of storage.listHierarchyPages(config.tmpContainer, { prefix: `${jobType}/` }))
    prefixes.push(...page.prefixes);
  if (!prefixes.length) return [];
  const ids = prefixes.map((p) => p.slice(jobType.length + 1).replace(/\/$/, ''));
  const { rows } = await ctx.db.query<{ id: string; status: string }>(
    `SELECT id, status FROM ${quoted(ctx.ledger.schema)}.jobs WHERE id = ANY($1::text[])`,
    [ids],
  );
  const status = new Map(rows.map((r) => [r.id, r.status]));
  const swept: string[] = [];
  for (const [i, id] of ids.entries()) {
    const s = status.get(id);
    if (s === 'failed' || s === 'cancelled') {
      await deleteTmpPrefix(storage, config.tmpContainer, prefixes[i]!);
      swept.push(prefixes[i]!);
    }
  }
  if (swept.length) ctx.log.info('swept temporary windows of ended jobs', { prefixes: swept });
  return swept;
}
