/**
 * Test fixtures shared by the container job packages (`@coremachine/storage/testing`):
 * a generated blob tree and an independent listing through the raw SDK.
 */
import { BlobServiceClient, StorageSharedKeyCredential, type ContainerClient } from '@azure/storage-blob';
import { setTimeout as sleep } from 'node:timers/promises';
import { AZURITE_ACCOUNT, AZURITE_KEY, type StorageConfig } from '../config.ts';

const MiB = 1024 * 1024;
const GiB = 1024 * MiB;

export interface SampleBlob {
  name: string;
  /** Bytes of real data, or the declared size of a sparse page blob. */
  size: number;
  sparse?: boolean;
  contentType?: string;
  metadata?: Record<string, string>;
}

/** Blobs written before the cutoff. Sizes cover every summary bucket via sparse page blobs. */
export const EARLY_BLOBS: SampleBlob[] = [
  { name: 'raster/dem/elev.TIF', size: 3000, contentType: 'image/tiff', metadata: { source: 'survey', epsg: '32633' } },
  { name: 'raster/dem/slope.tif', size: 1500, contentType: 'image/tiff' },
  { name: 'raster/ortho/tile_001.tiff', size: 4096, contentType: 'image/tiff' },
  { name: 'raster/ortho/tile_002.TIFF', size: 4097, contentType: 'image/tiff', metadata: { cloud: '3' } },
  { name: 'vector/roads.gdb/a00000001.gdbtable', size: 700 },
  { name: 'vector/roads.gdb/a00000001.gdbtablx', size: 300 },
  { name: 'vector/roads.gdb/gdb', size: 8 },
  { name: 'vector/roads.gdb/timestamps', size: 400 },
  { name: 'vector/parcels.shp', size: 2500, contentType: 'application/vnd.shp' },
  { name: 'vector/parcels.dbf', size: 1200 },
  { name: 'vector/parcels.shx', size: 180 },
  { name: 'vector/parcels.prj', size: 145, contentType: 'text/plain' },
  { name: 'vector/points.geojson', size: 900, contentType: 'application/geo+json', metadata: { layer: 'points' } },
  { name: 'docs/README', size: 64, contentType: 'text/plain' },
  { name: 'docs/notes.TXT', size: 128, contentType: 'text/plain' },
  { name: 'misc/archive.tar.gz', size: 2048, contentType: 'application/gzip' },
  { name: 'big/fifteen.bin', size: 15 * MiB, sparse: true },
  { name: 'big/two-hundred.bin', size: 200 * MiB, sparse: true },
  { name: 'big/two-gig.img', size: 2 * GiB, sparse: true },
  { name: 'big/twelve-gig.img', size: 12 * GiB, sparse: true },
];

/** Blobs written after the cutoff. */
export const LATE_BLOBS: SampleBlob[] = [
  { name: 'late/new.tif', size: 5000, contentType: 'image/tiff' },
  { name: 'late/new.json', size: 50, contentType: 'application/json' },
];

/** A raw SDK container client for the configuration (Azurite or connection string only). */
export function sdkContainer(config: StorageConfig, container: string): ContainerClient {
  const service =
    config.kind === 'azurite'
      ? new BlobServiceClient(config.endpoint, new StorageSharedKeyCredential(AZURITE_ACCOUNT, AZURITE_KEY))
      : config.kind === 'connection_string'
        ? BlobServiceClient.fromConnectionString(config.connectionString)
        : (() => {
            throw new Error('sample tree needs Azurite or a connection string');
          })();
  return service.getContainerClient(container);
}

async function writeBlob(client: ContainerClient, b: SampleBlob): Promise<void> {
  const headers = { blobContentType: b.contentType ?? 'application/octet-stream' };
  if (b.sparse) {
    // A page blob of the declared size with no pages written: the service reports the full
    // size, nothing is stored. Sizes must be multiples of 512.
    await client.getPageBlobClient(b.name).create(b.size, { blobHTTPHeaders: headers, metadata: b.metadata });
    return;
  }
  const data = Buffer.alloc(b.size, b.name.length % 251);
  await client.getBlockBlobClient(b.name).uploadData(data, { blobHTTPHeaders: headers, metadata: b.metadata });
}

export interface SampleTree {
  container: string;
  /** An instant strictly after every early blob's last-modified and before every late one's. */
  cutoff: Date;
}

/**
 * Creates `container` with EARLY_BLOBS, then (after the service clock has moved past a whole
 * second, since Last-Modified has 1 s resolution) LATE_BLOBS.
 */
export async function createSampleTree(config: StorageConfig, container: string): Promise<SampleTree> {
  const client = sdkContainer(config, container);
  await client.createIfNotExists();
  await Promise.all(EARLY_BLOBS.map((b) => writeBlob(client, b)));
  let newestEarly = 0;
  for await (const b of client.listBlobsFlat())
    newestEarly = Math.max(newestEarly, b.properties.lastModified.getTime());
  const cutoff = new Date(newestEarly + 1000);
  while (Date.now() < newestEarly + 2100) await sleep(100);
  await Promise.all(LATE_BLOBS.map((b) => writeBlob(client, b)));
  return { container, cutoff };
}

export interface SdkBlob {
  name: string;
  size: number;
  lastModified: Date;
  contentType: string | undefined;
  etag: string;
  metadata: Record<string, string>;
}

/** Every blob of a (small, test) container through the raw SDK: the independent reference. */
export async function sdkListAll(config: StorageConfig, container: string, prefix?: string): Promise<SdkBlob[]> {
  const out: SdkBlob[] = [];
  for await (const b of sdkContainer(config, container).listBlobsFlat({ prefix, includeMetadata: true })) {
    out.push({
      name: b.name,
      size: b.properties.contentLength ?? 0,
      lastModified: b.properties.lastModified,
      contentType: b.properties.contentType,
      etag: b.properties.etag,
      metadata: b.metadata ?? {},
    });
  }
  return out;
}
