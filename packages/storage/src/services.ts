import type {} from '@coremachine/core-machine';
import type { BlobStorage } from './blob-storage.ts';

// Every machine (server, test-kit) supplies `services.storage`; job handlers use it via ctx.
declare module '@coremachine/core-machine' {
  interface Services {
    storage: BlobStorage;
  }
}

export {};
