import { open } from 'node:fs/promises';

/** One image file directory (IFD) of a TIFF, as far as COG rules care. */
export interface TiffIfd {
  offset: number;
  width: number;
  height: number;
  /** NewSubfileType: bit 0 = reduced resolution (overview), bit 2 = transparency mask. */
  subfileType: number;
  tileWidth: number | null;
  tileHeight: number | null;
  /** Offset of the first non-empty tile or strip (0 if all are empty). */
  firstDataOffset: number;
}

export interface TiffStructure {
  bigTiff: boolean;
  ifds: TiffIfd[];
  /** Content of the GDAL ghost area after the header (`LAYOUT=IFDS_BEFORE_DATA` ...), if any. */
  ghostArea: string | null;
  /** Where the main IFD must start given the header and ghost area. */
  expectedFirstIfdOffset: number;
}

const TAG = {
  width: 256,
  height: 257,
  subfile: 254,
  stripOffsets: 273,
  tileWidth: 322,
  tileHeight: 323,
  tileOffsets: 324,
};
const TYPE_SIZE: Record<number, number> = {
  1: 1,
  2: 1,
  3: 2,
  4: 4,
  5: 8,
  6: 1,
  7: 1,
  8: 2,
  9: 4,
  10: 8,
  11: 4,
  12: 8,
  16: 8,
  17: 8,
  18: 8,
};
const GHOST = 'GDAL_STRUCTURAL_METADATA_SIZE=';

/**
 * Reads the IFD chain of a local TIFF (classic or BigTIFF) without decoding any pixel: the
 * byte layout is what the Cloud-Optimized GeoTIFF rules are about.
 */
export async function readTiffStructure(path: string): Promise<TiffStructure> {
  const fh = await open(path, 'r');
  try {
    const read = async (offset: number, length: number): Promise<Buffer> => {
      const buf = Buffer.alloc(length);
      const { bytesRead } = await fh.read(buf, 0, length, offset);
      if (bytesRead < length) throw new Error(`TIFF truncated: wanted ${length} bytes at ${offset}, got ${bytesRead}`);
      return buf;
    };
    const head = await read(0, 16);
    const order = head.toString('latin1', 0, 2);
    if (order !== 'II' && order !== 'MM') throw new Error(`not a TIFF: byte order mark is ${JSON.stringify(order)}`);
    const le = order === 'II';
    const u16 = (b: Buffer, o: number) => (le ? b.readUInt16LE(o) : b.readUInt16BE(o));
    const u32 = (b: Buffer, o: number) => (le ? b.readUInt32LE(o) : b.readUInt32BE(o));
    const u64 = (b: Buffer, o: number) => Number(le ? b.readBigUInt64LE(o) : b.readBigUInt64BE(o));
    const magic = u16(head, 2);
    if (magic !== 42 && magic !== 43) throw new Error(`not a TIFF: magic number is ${magic}`);
    const bigTiff = magic === 43;
    const headerSize = bigTiff ? 16 : 8;
    let next = bigTiff ? u64(head, 8) : u32(head, 4);

    let ghostArea: string | null = null;
    let expectedFirstIfdOffset = headerSize;
    const probe = await read(headerSize, GHOST.length + 7).catch(() => null);
    if (probe && probe.toString('latin1', 0, GHOST.length) === GHOST) {
      const size = Number(probe.toString('latin1', GHOST.length, GHOST.length + 6));
      const pattern = `${GHOST}${'0'.repeat(6)} bytes\n`.length;
      ghostArea = (await read(headerSize + pattern, size)).toString('latin1');
      expectedFirstIfdOffset = headerSize + pattern + size;
      expectedFirstIfdOffset += expectedFirstIfdOffset % 2;
    }

    const entrySize = bigTiff ? 20 : 12;
    const countSize = bigTiff ? 8 : 2;
    const inlineSize = bigTiff ? 8 : 4;
    const ifds: TiffIfd[] = [];
    const seen = new Set<number>();
    while (next !== 0 && !seen.has(next) && ifds.length < 64) {
      seen.add(next);
      const offset = next;
      const countBuf = await read(offset, countSize);
      const count = bigTiff ? u64(countBuf, 0) : u16(countBuf, 0);
      const body = await read(offset + countSize, count * entrySize + inlineSize);
      const values = new Map<number, number[]>();
      for (let i = 0; i < count; i++) {
        const e = i * entrySize;
        const tag = u16(body, e);
        if (!Object.values(TAG).includes(tag)) continue;
        const type = u16(body, e + 2);
        const n = bigTiff ? u64(body, e + 4) : u32(body, e + 4);
        const size = TYPE_SIZE[type] ?? 1;
        const valueAt = e + (bigTiff ? 12 : 8);
        // Tile offset arrays can be large: the first few entries are enough to find the first
        // non-empty block of a level (GDAL writes empty blocks as offset 0 only when sparse).
        const wanted = Math.min(n, 4096);
        const raw =
          n * size <= inlineSize
            ? body.subarray(valueAt, valueAt + n * size)
            : await read(bigTiff ? u64(body, valueAt) : u32(body, valueAt), wanted * size);
        const list: number[] = [];
        for (let k = 0; k < Math.min(n, wanted); k++) {
          const o = k * size;
          list.push(size === 2 ? u16(raw, o) : size === 4 ? u32(raw, o) : size === 8 ? u64(raw, o) : raw[o]!);
        }
        values.set(tag, list);
      }
      const first = (tag: number) => values.get(tag)?.[0] ?? null;
      const dataOffsets = values.get(TAG.tileOffsets) ?? values.get(TAG.stripOffsets) ?? [];
      ifds.push({
        offset,
        width: first(TAG.width) ?? 0,
        height: first(TAG.height) ?? 0,
        subfileType: first(TAG.subfile) ?? 0,
        tileWidth: first(TAG.tileWidth),
        tileHeight: first(TAG.tileHeight),
        firstDataOffset: dataOffsets.find((o) => o !== 0) ?? 0,
      });
      next = bigTiff ? u64(body, count * entrySize) : u32(body, count * entrySize);
    }
    return { bigTiff, ifds, ghostArea, expectedFirstIfdOffset };
  } finally {
    await fh.close();
  }
}
