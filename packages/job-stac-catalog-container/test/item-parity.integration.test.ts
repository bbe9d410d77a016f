import { randomBytes } from 'node:crypto';
import { buildBlobRasterItem, rasterItemId, type StacItem } from '@coremachine/geo/stac';
import { createStorage, storageConfigFromEnv, type BlobStorage } from '@coremachine/storage';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { awkwardRasters } from './awkward-rasters.ts';
import { tmp } from './fixtures.ts';

const container = `stacparity-${randomBytes(4).toString('hex')}`;
const LAST_MODIFIED = new Date('2024-02-03T04:05:06.000Z');
let storage: BlobStorage;
let files: Map<string, Buffer>;

beforeAll(async () => {
  storage = createStorage(storageConfigFromEnv());
  await storage.ensureContainer(container);
  files = awkwardRasters(tmp());
  for (const [blob, bytes] of files) await storage.uploadData(container, blob, bytes);
});

afterAll(async () => {
  await storage?.deleteContainer(container);
});

type Outcome = { item: StacItem } | { error: { name: string; code: string | null; message: string } };

/** Keys sorted at every level, the run's container and endpoint replaced: the same rasters give the same text. */
function canonical(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(canonical);
  if (value && typeof value === 'object')
    return Object.fromEntries(
      Object.keys(value)
        .sort()
        .map((k) => [k, canonical((value as Record<string, unknown>)[k])]),
    );
  if (typeof value === 'string') {
    const base = storage.blobUrl(container, 'x').slice(0, -1);
    return value.replaceAll(base, 'https://storage.invalid/CONTAINER/').replaceAll(container, 'CONTAINER');
  }
  return value;
}

async function outcome(build: () => Promise<StacItem | null>): Promise<Outcome> {
  try {
    const item = await build();
    if (!item) throw new Error('blob not found');
    return { item };
  } catch (err) {
    const e = err as Error & { code?: string };
    return { error: { name: e.name, code: e.code ?? null, message: e.message } };
  }
}

const rasters = () => [...files].filter(([blob]) => blob.endsWith('.tif'));
/** No sidecar: the listing lets the builder read it into memory. */
const selfContained = (blob: string) => !files.has(`${blob}.aux.xml`);

/** The per-raster builder as it was before the batch path: one call per blob. */
async function perRaster(inMemory: boolean): Promise<Record<string, Outcome>> {
  const out: Record<string, Outcome> = {};
  for (const [blob, bytes] of rasters()) {
    out[blob] = await outcome(() =>
      buildBlobRasterItem(storage, container, blob, {
        collection: 'dev',
        listed: { size: bytes.length, lastModified: LAST_MODIFIED, selfContained: inMemory && selfContained(blob) },
      }),
    );
  }
  return out;
}

/** JSON Lines (one raster a line, keys sorted): a format Prettier leaves as it is. */
const snapshotText = (outcomes: Record<string, Outcome>) =>
  Object.keys(outcomes)
    .sort()
    .map((blob) => {
      const o = outcomes[blob]!;
      // The id carries a digest of this run's container: checked here, then left out.
      if ('item' in o) expect(o.item.id).toBe(rasterItemId(container, blob));
      const stable = 'item' in o ? { item: { ...o.item, id: 'ITEM_ID' } } : o;
      return `${JSON.stringify(canonical({ blob, outcome: stable }))}\n`;
    })
    .join('');

describe('STAC items of awkward rasters', () => {
  it('are the snapshot taken from the per-raster builder, read in memory and in place', async () => {
    const memory = await perRaster(true);
    const inPlace = await perRaster(false);
    // Every raster but the broken ones makes an item, the same on both reads.
    expect(Object.entries(memory).flatMap(([b, o]) => ('error' in o ? [[b, o.error.code]] : []))).toEqual([
      ['d/local-engineering.tif', 'CRS_NOT_GEOREFERENCED'],
      ['d/no-crs.tif', 'RASTER_NO_CRS'],
      ['d/truncated.tif', null],
    ]);
    for (const [blob, o] of Object.entries(memory)) if ('item' in o) expect(inPlace[blob]).toEqual(o);
    const palette = memory['b/palette.tif'];
    expect(palette && 'item' in palette && palette.item.assets.data!['raster:bands']).toMatchObject([
      { 'classification:classes': [{ value: 1, name: 'water', color_hint: '0000FF' }, { value: 2 }, { value: 3 }] },
    ]);
    await expect(snapshotText(memory)).toMatchFileSnapshot('./__snapshots__/awkward-raster-items.jsonl');
  });
});
