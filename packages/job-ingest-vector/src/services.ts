/** Settings of the vector jobs that the machine's creator (server, test-kit) may supply. */
export interface VectorServices {
  /** Schemas vector tables may be written to; the first is the default. */
  schemas: string[];
}

declare module '@coremachine/core-machine' {
  interface Services {
    /** Optional: without it, only schema `geo` is allowed. */
    vector?: VectorServices;
  }
}

export const DEFAULT_VECTOR_SCHEMAS = ['geo'];

export {};
