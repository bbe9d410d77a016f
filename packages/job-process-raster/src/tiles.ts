import { createHash } from 'node:crypto';
import { permanentError, type TaskContext } from '@coremachine/core-machine';
import { checkCog, rasterError } from '@coremachine/geo/raster';
import { COLLECTION_ID_PATTERN, registerBlobRaster, StacError, upsertCollection } from '@coremachine/geo/stac';
import gdal from 'gdal-async';
import { z } from 'zod';

export const COG_CONTENT_TYPE = 'image/tiff; application=geotiff; profile=cloud-optimized';

/** Where a window goes when the output is a tile set: a COG of its own in the output container. */
export const tileTarget = z.object({
  container: z.string(),
  blob: z.string(),
  creation_options: z.array(z.string()),
});
export type TileTarget = z.output<typeof tileTarget>;

/** `<dir>/<name>.tif` (or `_cog.tif`) -> `<dir>/<name>_tiles/`: where a tile set's COGs go. */
export function tilesPrefixFor(blobName: string): string {
  return `${blobName.replace(/(_cog)?\.tiff?$/i, '')}_tiles/`;
}

/** A STAC collection id for a tile set (the pattern's 64 characters; a hash keeps long names apart). */
export function tilesCollectionId(container: string, prefix: string): string {
  const base = `${container}-${prefix.replace(/\/$/, '')}`
    .replace(/[^A-Za-z0-9._-]+/g, '-')
    .replace(/^[^A-Za-z0-9]+/, '');
  const id =
    base.length <= 64 ? base : `${base.slice(0, 55)}-${createHash('sha256').update(base).digest('hex').slice(0, 8)}`;
  return COLLECTION_ID_PATTERN.test(id) ? id : `tiles-${createHash('sha256').update(base).digest('hex').slice(0, 16)}`;
}

/** Converts a written window to a COG tile (local), checks the COG layout; returns the file. */
export async function windowToCog(
  window: string,
  destination: string,
  target: TileTarget,
  label: string,
): Promise<void> {
  const src = await gdal.openAsync(window);
  try {
    const out = await gdal.translateAsync(destination, src, [
      '-of',
      'COG',
      ...target.creation_options.flatMap((o) => ['-co', o]),
    ]);
    out.close();
  } finally {
    src.close();
  }
  const check = await checkCog(destination);
  if (!check.valid)
    throw rasterError(
      'COG_INVALID',
      `tile ${target.blob} of ${label} breaks the COG layout rules: ${check.errors.join('; ')}`,
    );
}

export const tileSetInput = z.object({
  container: z.string(),
  prefix: z.string(),
  tile_size: z.number().int(),
  tiles: z.array(z.object({ key: z.string(), blob: z.string() })).min(1),
  title: z.string(),
});
export type TileSetInput = z.output<typeof tileSetInput>;

export const tilesOutput = z.object({
  tiles_container: z.string(),
  tiles_prefix: z.string(),
  tile_count: z.number().int(),
  tile_size: z.number().int(),
  /** The tiles, by window key (stable blob URLs, never SAS). */
  tiles: z.array(z.object({ key: z.string(), blob: z.string(), url: z.string() })),
  /** STAC collection listing one item per tile; null when the machine has no STAC store. */
  collection_id: z.string().nullable(),
  stac_item_ids: z.array(z.string()),
});
export type TilesOutput = z.output<typeof tilesOutput>;

/**
 * The tile set's last stage: one STAC item per tile in a collection of its own (created or
 * updated; its extent refreshed from the items), so a client finds the tiles as a mosaic.
 */
export async function runTileSetTask(
  input: TileSetInput,
  ctx: Pick<TaskContext<unknown>, 'services' | 'db' | 'signal' | 'progress'>,
): Promise<TilesOutput> {
  const { storage, stac } = ctx.services;
  const ids: string[] = [];
  let collectionId: string | null = null;
  if (stac) {
    collectionId = tilesCollectionId(input.container, input.prefix);
    try {
      await upsertCollection(ctx.db, stac.schema, {
        type: 'Collection',
        stac_version: '1.0.0',
        id: collectionId,
        title: input.title,
        description: `Cloud-optimised GeoTIFF tiles (${input.tile_size} px) of ${input.title}, in ${input.container}/${input.prefix}`,
        license: 'proprietary',
        keywords: ['raster', 'cog', 'tiles'],
        extent: { spatial: { bbox: [[-180, -90, 180, 90]] }, temporal: { interval: [[null, null]] } },
        links: [],
      });
      for (const [i, t] of input.tiles.entries()) {
        ctx.signal.throwIfAborted();
        const r = await registerBlobRaster(ctx.db, stac.schema, storage, input.container, t.blob, {
          collection: collectionId,
          signal: ctx.signal,
        });
        ids.push(r.id);
        ctx.progress((i + 1) / input.tiles.length, 'registering tiles');
      }
    } catch (err) {
      throw err instanceof StacError
        ? permanentError(err.code, err.message, err.issues.length ? { issues: err.issues } : undefined)
        : err;
    }
  }
  return {
    tiles_container: input.container,
    tiles_prefix: input.prefix,
    tile_count: input.tiles.length,
    tile_size: input.tile_size,
    tiles: input.tiles.map((t) => ({ ...t, url: storage.blobUrl(input.container, t.blob) })),
    collection_id: collectionId,
    stac_item_ids: ids,
  };
}
