/**
 * A blob's stem: its path up to the first dot of its file name (`dem/a.tif.aux.xml` → `dem/a`),
 * null when the file name has no dot. GDAL's sidecar files of a raster (`.aux.xml`, `.ovr`,
 * `.msk`, `.tfw`, `.aux`, ...) share its stem.
 */
export function blobStem(name: string): string | null {
  const slash = name.lastIndexOf('/');
  const dot = name.indexOf('.', slash + 1);
  return dot < 0 ? null : name.slice(0, dot);
}

/**
 * Tells, over a listing in name order, which blobs share their stem with another blob. All
 * names of one stem start with `stem.`, so they are contiguous in name order: only the groups
 * still open are kept, and memory stays small whatever the container size.
 * @example
 *   const g = new StemGroups(); for (const b of page) g.add(b.name, isRaster ? i : null); g.end();
 *   g.shared(i) // true when blob i has sidecars (or might: see end(true))
 */
export class StemGroups {
  readonly #open = new Map<string, { count: number; members: number[] }>();
  readonly #shared = new Set<number>();

  /** Adds the next blob of the listing; `index` is the caller's id for blobs it asks about later. */
  add(name: string, index: number | null): void {
    for (const [stem, group] of this.#open) {
      if (!name.startsWith(`${stem}.`)) this.#close(stem, group);
    }
    const stem = blobStem(name);
    if (stem === null) return;
    let group = this.#open.get(stem);
    if (!group) this.#open.set(stem, (group = { count: 0, members: [] }));
    group.count++;
    if (index !== null) group.members.push(index);
  }

  /** Closes the groups still open; `truncated`: the listing stopped early, so they may have more members. */
  end(truncated = false): void {
    for (const [stem, group] of this.#open) {
      if (truncated) group.count = Math.max(group.count, 2);
      this.#close(stem, group);
    }
  }

  /** True when blob `index` shares its stem with another blob. */
  shared(index: number): boolean {
    return this.#shared.has(index);
  }

  #close(stem: string, group: { count: number; members: number[] }): void {
    if (group.count > 1) for (const m of group.members) this.#shared.add(m);
    this.#open.delete(stem);
  }
}
