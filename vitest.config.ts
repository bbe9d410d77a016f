import { defineConfig } from 'vitest/config';

/** Shared vitest defaults; each package's vitest.config.ts merges this. */
export default defineConfig({
  test: {
    testTimeout: 120_000,
    hookTimeout: 120_000,
    pool: 'forks',
    reporters: ['default', 'json'],
    outputFile: { json: '.vitest-results.json' },
  },
});
