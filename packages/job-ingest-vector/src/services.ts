/** Settings of the vector jobs that the machine's creator (server, test-kit) may supply. */
export interface VectorServices {
  /** Schemas vector tables may be written to; the first is the default. */
  schemas: string[];
  /**
   * Sources up to this size (bytes) are fetched once per worker with one streamed GET and read
   * from a local copy (see local-copy.ts); larger ones are read in place through /vsiaz/.
   * Default {@link DEFAULT_LOCAL_COPY_MAX_BYTES}; 0 reads every source in place.
   */
  localCopyMaxBytes?: number;
}

declare module '@coremachine/core-machine' {
  interface Services {
    /** Optional: without it, only schema `geo` is allowed. */
    vector?: VectorServices;
  }
}

export const DEFAULT_VECTOR_SCHEMAS = ['geo'];

/** Default bound of the per-worker local copy of a source: 1 GiB. */
export const DEFAULT_LOCAL_COPY_MAX_BYTES = 1024 ** 3;

export {};
