import { defineConfig } from 'vitest/config';

/**
 * `pnpm test:unit`: the tests that need no service (no PostgreSQL, no Azurite): pure functions,
 * schemas, compliance, GDAL on local files. Integration tests are named `*.integration.test.ts`.
 */
export default defineConfig({
  test: {
    include: ['packages/*/src/**/*.test.ts', 'apps/*/src/**/*.test.ts', 'scripts/**/*.test.ts'],
    exclude: ['**/node_modules/**', '**/*.integration.test.ts'],
    typecheck: {
      enabled: true,
      include: ['packages/*/src/**/*.test-d.ts'],
      tsconfig: './packages/client/tsconfig.json',
    },
    pool: 'forks',
  },
});
