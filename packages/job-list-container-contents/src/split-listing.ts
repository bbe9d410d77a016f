import type { BlobInfo, BlobStorage, HierarchyPage } from '@coremachine/storage';

/** Directory listings running at once (ahead of the one being recorded). */
export const LIST_CONCURRENCY = 4;
/** Pages a directory listing may hold ahead of the recorder before it waits. */
export const PAGES_AHEAD = 1;
/** Levels descended while a level holds a single directory and no blob. */
const MAX_DESCENT = 8;

export interface SplitListingOptions {
  prefix?: string;
  /**
   * List each virtual directory on its own, `concurrency` at a time (default true). Without,
   * one flat listing, the next page fetched while the current one is recorded.
   */
  split?: boolean;
  includeMetadata: boolean;
  includeTags: boolean;
  signal: AbortSignal;
  concurrency?: number;
  pageSize?: number;
}

export interface SplitListingStats {
  /** Virtual directories listed on their own (0: the listing could not be split). */
  prefixes: number;
}

/**
 * Pulls an async iterable ahead of its consumer into a buffer of at most `max` items; the
 * source is not asked for more while the buffer is full, so memory stays bounded.
 */
class Prefetch<T> implements AsyncIterable<T> {
  readonly #buf: T[] = [];
  readonly #max: number;
  #done = false;
  #error: unknown = undefined;
  #wake: (() => void) | null = null;
  #space: (() => void) | null = null;

  constructor(source: AsyncIterable<T>, max: number) {
    this.#max = max;
    void this.#pump(source);
  }

  async #pump(source: AsyncIterable<T>): Promise<void> {
    try {
      for await (const item of source) {
        this.#buf.push(item);
        this.#notify();
        while (this.#buf.length >= this.#max) await new Promise<void>((r) => (this.#space = r));
      }
    } catch (err) {
      this.#error = err;
    } finally {
      this.#done = true;
      this.#notify();
    }
  }

  #notify(): void {
    const wake = this.#wake;
    this.#wake = null;
    wake?.();
  }

  async *[Symbol.asyncIterator](): AsyncIterator<T> {
    for (;;) {
      if (this.#buf.length > 0) {
        const item = this.#buf.shift()!;
        const space = this.#space;
        this.#space = null;
        space?.();
        yield item;
      } else if (this.#done) {
        if (this.#error !== undefined) throw this.#error;
        return;
      } else {
        await new Promise<void>((r) => (this.#wake = r));
      }
    }
  }
}

type Entry = { prefix: string } | { blob: BlobInfo };
type Segment = { blobs: BlobInfo[] } | { pages: Prefetch<BlobInfo[]> };

/** A hierarchy page's directories and blobs in the order the flat listing has them. */
function merged(page: HierarchyPage): Entry[] {
  const out: Entry[] = [];
  let p = 0,
    b = 0;
  while (p < page.prefixes.length || b < page.blobs.length) {
    const prefix = page.prefixes[p];
    const blob = page.blobs[b];
    // A directory `x/` sorts against a name without `/` as every name under it does.
    if (prefix !== undefined && (blob === undefined || prefix < blob.name)) {
      out.push({ prefix });
      p += 1;
    } else {
      out.push({ blob: blob! });
      b += 1;
    }
  }
  return out;
}

/**
 * The blobs under `prefix`, page by page, in the order of the flat listing, with the listing's
 * properties (size, content type, last modified, ETag, and metadata/tags when asked): nothing
 * is requested per blob. Listings run ahead of the consumer by at most `PAGES_AHEAD` pages.
 * Flat listings go through `listPagesStreamed` (each List Blobs response parsed as it arrives,
 * one small record per blob), which keeps a long listing's memory to the pages held.
 *
 * With `split`, the listing is split at the first level that has more than one virtual
 * directory: each directory is listed on its own, `concurrency` at a time, and handed over in
 * order. That pays where the service lists a prefix in time proportional to what it returns
 * (Azure Storage); Azurite scans every blob of the account for each prefix listing and lists a
 * hierarchy level by reading the whole level, so there one flat listing is faster.
 *
 * Stopping early (break, return, an error) aborts the listings still running.
 */
export async function* splitListing(
  storage: BlobStorage,
  container: string,
  options: SplitListingOptions,
  stats: SplitListingStats = { prefixes: 0 },
): AsyncGenerator<BlobInfo[], void> {
  const abort = new AbortController();
  const signal = AbortSignal.any([options.signal, abort.signal]);
  const listOptions = {
    includeMetadata: options.includeMetadata,
    includeTags: options.includeTags,
    pageSize: options.pageSize,
    signal,
  };
  const concurrency = Math.max(1, options.concurrency ?? LIST_CONCURRENCY);
  try {
    if (options.split === false) {
      const pages = new Prefetch(
        storage.listPagesStreamed(container, { ...listOptions, prefix: options.prefix }),
        PAGES_AHEAD,
      );
      for await (const page of pages) if (page.length > 0) yield page;
      return;
    }
    // Descend while the level is one directory and nothing else (`data/` holding everything).
    let base = options.prefix ?? '';
    let levels: AsyncIterator<HierarchyPage>;
    let first: IteratorResult<HierarchyPage>;
    for (let depth = 0; ; depth++) {
      levels = storage.listHierarchyPages(container, { ...listOptions, prefix: base })[Symbol.asyncIterator]();
      first = await levels.next();
      if (first.done || depth >= MAX_DESCENT) break;
      const only = first.value.prefixes.length === 1 && first.value.blobs.length === 0 ? first.value.prefixes[0] : null;
      if (only === null || only === undefined) break;
      const second = await levels.next();
      if (!second.done) {
        // More pages at this level: keep it (the rest follows from `levels`).
        first = {
          done: false,
          value: {
            prefixes: [...first.value.prefixes, ...second.value.prefixes],
            blobs: [...first.value.blobs, ...second.value.blobs],
          },
        };
        break;
      }
      base = only;
    }
    if (first.done) return;

    let pending: Entry[] = merged(first.value);
    let levelDone = false;
    const window: Segment[] = [];
    const fill = async () => {
      while (window.length < concurrency) {
        if (pending.length === 0) {
          if (levelDone) return;
          const r = await levels.next();
          if (r.done) {
            levelDone = true;
            return;
          }
          pending = merged(r.value);
          continue;
        }
        const head = pending[0]!;
        if ('prefix' in head) {
          pending.shift();
          stats.prefixes += 1;
          window.push({
            pages: new Prefetch(
              storage.listPagesStreamed(container, { ...listOptions, prefix: head.prefix }),
              PAGES_AHEAD,
            ),
          });
        } else {
          const blobs: BlobInfo[] = [];
          while (pending.length > 0 && 'blob' in pending[0]!) blobs.push((pending.shift() as { blob: BlobInfo }).blob);
          window.push({ blobs });
        }
      }
    };
    for (;;) {
      await fill();
      const seg = window.shift();
      if (!seg) return;
      if ('blobs' in seg) {
        if (seg.blobs.length > 0) yield seg.blobs;
        continue;
      }
      for await (const page of seg.pages) {
        if (page.length > 0) yield page;
        // Keep `concurrency` listings running while a long directory is being recorded.
        await fill();
      }
    }
  } finally {
    abort.abort();
  }
}
