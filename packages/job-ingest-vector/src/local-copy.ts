import { createHash } from 'node:crypto';
import { mkdirSync, readdirSync, rmSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { extname, join } from 'node:path';
import type { BlobStorage } from '@coremachine/storage';

/**
 * Per-worker local copies of source blobs: one streamed GET per blob version and worker, shared
 * by every task of the worker that reads it (prepare, then the load chunks), removed once no
 * task has used it for {@link IDLE_MS}. Reading a GeoPackage's FID range through /vsiaz/ costs a
 * ranged request every few hundred KB; a local file costs none, and the blob is fetched once.
 *
 * Copies live in a private folder of this process (mode 0700), removed when the process exits;
 * folders of processes that died are removed by the next one. A copy is keyed by container,
 * blob and ETag, and downloaded on the condition that the ETag still matches: a blob replaced
 * under the same name is a new copy, never a stale read.
 */
export interface LocalCopy {
  path: string;
  release(): void;
}

/** How long an unused copy is kept for the next task of the same job. */
export const IDLE_MS = 30_000;

const PREFIX = 'cm-ingest-copies-';

interface Entry {
  ready: Promise<string>;
  refs: number;
  timer?: NodeJS.Timeout | undefined;
  file: string;
}
const entries = new Map<string, Entry>();
let folder: string | undefined;

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** This process's folder, created on first use; leftovers of dead processes are removed then. */
function ownFolder(): string {
  if (folder) return folder;
  for (const name of readdirSync(tmpdir())) {
    const pid = Number(name.slice(PREFIX.length));
    if (name.startsWith(PREFIX) && Number.isInteger(pid) && pid !== process.pid && !isAlive(pid)) {
      rmSync(join(tmpdir(), name), { recursive: true, force: true });
    }
  }
  folder = join(tmpdir(), `${PREFIX}${process.pid}`);
  mkdirSync(folder, { recursive: true, mode: 0o700 });
  process.once('exit', () => rmSync(folder!, { recursive: true, force: true }));
  return folder;
}

function drop(key: string, entry: Entry): void {
  if (entries.get(key) === entry) entries.delete(key);
  void rm(entry.file, { force: true });
}

/**
 * The local copy of `container/blob` at `etag`, downloaded by the first caller (the others wait
 * for that download), named with `extension` (default: the blob's). Each call must `release()`
 * its copy. A failed download is not kept: the next call tries again.
 */
export async function acquireLocalCopy(
  storage: BlobStorage,
  container: string,
  blob: string,
  etag: string,
  extension = extname(blob).slice(1),
): Promise<LocalCopy> {
  const key = `${container}\n${blob}\n${etag}`;
  let entry = entries.get(key);
  if (!entry) {
    // Named with the format's extension: GDAL recognises archives (/vsizip/ on .zip, .kmz) by it.
    const suffix = /^[a-z0-9]{1,8}$/i.test(extension) ? `.${extension.toLowerCase()}` : '';
    const file = join(ownFolder(), createHash('sha256').update(key).digest('hex').slice(0, 32) + suffix);
    const created: Entry = {
      refs: 0,
      file,
      ready: storage.downloadToFile(container, blob, file, { etag }).then(() => file),
    };
    created.ready.catch(() => drop(key, created));
    entries.set(key, created);
    entry = created;
  }
  const held = entry;
  held.refs += 1;
  clearTimeout(held.timer);
  held.timer = undefined;
  let released = false;
  const release = () => {
    if (released) return;
    released = true;
    held.refs -= 1;
    if (held.refs === 0 && entries.get(key) === held) {
      held.timer = setTimeout(() => {
        if (held.refs === 0) drop(key, held);
      }, IDLE_MS);
      held.timer.unref();
    }
  };
  try {
    return { path: await held.ready, release };
  } catch (err) {
    release();
    throw err;
  }
}

/** Copies currently kept by this process (for tests). */
export function localCopies(): string[] {
  return [...entries.values()].map((e) => e.file);
}
