/** A blob as seen in a listing or a stat. Dates are JS Dates; sizes are bytes. */
export interface BlobInfo {
  name: string;
  size: number;
  contentType: string | null;
  lastModified: Date;
  /** In HTTP form (`"0x8D..."`, quoted), the same from a listing and from a stat. */
  etag: string;
  /** Present when the listing asked for metadata (`includeMetadata`) and on `stat`. */
  metadata?: Record<string, string>;
  /** Present when the listing asked for index tags (`includeTags`); `{}` when the blob has none. */
  tags?: Record<string, string>;
}

export type BlobStat = ({ exists: true } & BlobInfo) | { exists: false; name: string };

export interface ListOptions {
  /** Only blobs whose name starts with this (validated like a blob path; may end with `/`). */
  prefix?: string;
  /** Blobs per page requested from the service (max 5000). */
  pageSize?: number;
  includeMetadata?: boolean;
  /** Also return each blob's index tags (`tags`). */
  includeTags?: boolean;
  signal?: AbortSignal;
}

/** One page of a hierarchical listing: the virtual directories and the blobs directly at that level. */
export interface HierarchyPage {
  /** Virtual directories, each ending with the delimiter (`raster/`), in listing order. */
  prefixes: string[];
  blobs: BlobInfo[];
}

export interface UploadOptions {
  /** Sent as the blob's Content-Type header; guessed from the extension when omitted. */
  contentType?: string;
  metadata?: Record<string, string>;
  signal?: AbortSignal;
}
