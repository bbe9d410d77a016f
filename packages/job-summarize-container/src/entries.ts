import type { BlobInfo } from '@coremachine/storage';

export const GDB_CONTENT_TYPE = 'application/x-esri-geodatabase';

/** A file as the summary counts it: a blob, or a whole Esri file geodatabase folder. */
export interface Entry {
  name: string;
  size: number;
  lastModified: Date;
  contentType: string | null;
  /** Blobs folded into this entry (1 for a plain blob). */
  fileCount: number;
  isGdb: boolean;
}

/** The `.gdb` folder a blob lives in (`a/roads.gdb/x.gdbtable` -> `a/roads.gdb`), or null. */
export function gdbFolderOf(name: string): string | null {
  const segments = name.split('/');
  for (let i = 0; i < segments.length - 1; i++) {
    if (segments[i]!.toLowerCase().endsWith('.gdb') && segments[i]!.length > 4)
      return segments.slice(0, i + 1).join('/');
  }
  return null;
}

/**
 * Turns a blob listing into entries, folding every `.gdb` folder into one entry with the summed
 * size, the newest modification time and the file count. Streaming: a listing is in
 * lexicographic order, so all blobs under `x.gdb/` arrive together and only the folder being
 * folded is held in memory.
 */
export async function* foldGeodatabases(blobs: AsyncIterable<BlobInfo>, onBlob?: () => void): AsyncGenerator<Entry> {
  let open: Entry | null = null;
  for await (const b of blobs) {
    onBlob?.();
    const folder = gdbFolderOf(b.name);
    if (open && folder !== open.name) {
      yield open;
      open = null;
    }
    if (folder) {
      if (!open)
        open = {
          name: folder,
          size: 0,
          lastModified: b.lastModified,
          contentType: GDB_CONTENT_TYPE,
          fileCount: 0,
          isGdb: true,
        };
      open.size += b.size;
      open.fileCount += 1;
      if (b.lastModified > open.lastModified) open.lastModified = b.lastModified;
      continue;
    }
    yield {
      name: b.name,
      size: b.size,
      lastModified: b.lastModified,
      contentType: b.contentType,
      fileCount: 1,
      isGdb: false,
    };
  }
  if (open) yield open;
}
