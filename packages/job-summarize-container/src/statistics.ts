import { blobExtension, NO_EXTENSION } from '@coremachine/storage';
import { z } from 'zod';
import type { Entry } from './entries.ts';

const MiB = 1024 * 1024;
const GiB = 1024 * MiB;

export const SIZE_BUCKETS = ['0-10MB', '10-100MB', '100MB-1GB', '1GB-10GB', '10GB+'] as const;
export type SizeBucket = (typeof SIZE_BUCKETS)[number];

/** The size bucket of a file (binary units: 10MB = 10 MiB); lower bounds inclusive. */
export function sizeBucket(bytes: number): SizeBucket {
  if (bytes < 10 * MiB) return '0-10MB';
  if (bytes < 100 * MiB) return '10-100MB';
  if (bytes < GiB) return '100MB-1GB';
  if (bytes < 10 * GiB) return '1GB-10GB';
  return '10GB+';
}

/** Bytes to GiB with 6 decimals. */
export const toGb = (bytes: number) => Math.round((bytes / GiB) * 1e6) / 1e6;
/** Bytes to MiB with 4 decimals. */
export const toMb = (bytes: number) => Math.round((bytes / MiB) * 1e4) / 1e4;

const fileRef = z.object({ name: z.string(), size_bytes: z.number(), size_mb: z.number(), last_modified: z.string() });

export const statisticsSchema = z.object({
  total_files: z.number().int(),
  total_size_bytes: z.number(),
  total_size_gb: z.number(),
  largest_file: fileRef.nullable(),
  smallest_file: fileRef.nullable(),
  /** By lower-case extension with its dot (`.tif`), `no_extension` when the name has none. */
  file_types: z.record(
    z.string(),
    z.object({ count: z.number().int(), total_size_bytes: z.number(), total_size_gb: z.number() }),
  ),
  size_distribution: z.object(
    Object.fromEntries(SIZE_BUCKETS.map((b) => [b, z.number().int()])) as Record<SizeBucket, z.ZodNumber>,
  ),
  date_range: z.object({ oldest_file: z.string().nullable(), newest_file: z.string().nullable() }),
  /** Esri file geodatabases, each counted above as one file of extension `.gdb`. */
  geodatabases: z.object({ count: z.number().int(), files_folded: z.number().int(), total_size_bytes: z.number() }),
});
export type Statistics = z.output<typeof statisticsSchema>;

/** Accumulates summary statistics in constant memory (plus one slot per extension). */
export class SummaryAccumulator {
  #files = 0;
  #bytes = 0;
  #largest: Entry | null = null;
  #smallest: Entry | null = null;
  #types = new Map<string, { count: number; bytes: number }>();
  #buckets = Object.fromEntries(SIZE_BUCKETS.map((b) => [b, 0])) as Record<SizeBucket, number>;
  #oldest: Date | null = null;
  #newest: Date | null = null;
  #gdb = { count: 0, files_folded: 0, total_size_bytes: 0 };

  get files(): number {
    return this.#files;
  }

  add(e: Entry): void {
    this.#files += 1;
    this.#bytes += e.size;
    // Ties keep the first in listing order, so the result is deterministic.
    if (!this.#largest || e.size > this.#largest.size) this.#largest = e;
    if (!this.#smallest || e.size < this.#smallest.size) this.#smallest = e;
    const ext = blobExtension(e.name) || NO_EXTENSION;
    const t = this.#types.get(ext) ?? { count: 0, bytes: 0 };
    t.count += 1;
    t.bytes += e.size;
    this.#types.set(ext, t);
    this.#buckets[sizeBucket(e.size)] += 1;
    if (!this.#oldest || e.lastModified < this.#oldest) this.#oldest = e.lastModified;
    if (!this.#newest || e.lastModified > this.#newest) this.#newest = e.lastModified;
    if (e.isGdb) {
      this.#gdb.count += 1;
      this.#gdb.files_folded += e.fileCount;
      this.#gdb.total_size_bytes += e.size;
    }
  }

  result(): Statistics {
    const ref = (e: Entry | null) =>
      e && { name: e.name, size_bytes: e.size, size_mb: toMb(e.size), last_modified: e.lastModified.toISOString() };
    const types = [...this.#types.entries()].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return {
      total_files: this.#files,
      total_size_bytes: this.#bytes,
      total_size_gb: toGb(this.#bytes),
      largest_file: ref(this.#largest),
      smallest_file: ref(this.#smallest),
      file_types: Object.fromEntries(
        types.map(([ext, t]) => [ext, { count: t.count, total_size_bytes: t.bytes, total_size_gb: toGb(t.bytes) }]),
      ),
      size_distribution: { ...this.#buckets },
      date_range: {
        oldest_file: this.#oldest?.toISOString() ?? null,
        newest_file: this.#newest?.toISOString() ?? null,
      },
      geodatabases: { ...this.#gdb },
    };
  }
}
