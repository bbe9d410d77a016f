import { defineConfig, mergeConfig } from 'vitest/config';
import base from '../../vitest.config.ts';

export default mergeConfig(
  base,
  defineConfig({
    test: {
      include: ['src/**/*.test.ts', 'test/**/*.test.ts'],
      globalSetup: ['@coremachine/storage/test-setup'],
      // One file at a time: the worker-kill test's ledger queries stalled for minutes (about one
      // run in two) while the other files' tiled warps ran beside it; under investigation.
      fileParallelism: false,
    },
  }),
);
