import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { FIXTURE_PLUGINS, fixtureApp, runTs } from './helpers.ts';

const startServer = (pluginsFrom: string) =>
  runTs('src/main.ts', [], {
    env: {
      CM_PLUGINS_FROM: pluginsFrom,
      CM_API_PORT: '0',
      CM_SCHEMA: 'cm_never_created',
      CM_EMBEDDED_AZURITE: 'false',
    },
  });

describe('plugin compliance at load', () => {
  it('a plugin missing aggregate stops the server, naming the package and the element', async () => {
    const run = await startServer(
      fixtureApp({ '@fixture/missing-aggregate': join(FIXTURE_PLUGINS, 'missing-aggregate') }),
    );
    expect(run.code).toBe(1);
    expect(run.stderr).toContain('[CM_ERR_PLUGIN_MISSING_ELEMENT]');
    expect(run.stderr).toContain(
      "@fixture/missing-aggregate (missing_aggregate): aggregate_job_results: expected 'aggregate' to be a function, received undefined",
    );
    expect(run.stdout).not.toContain('ready');
  });

  it('two plugins declaring the same job type stop the server', async () => {
    const run = await startServer(
      fixtureApp({
        '@fixture/dup-a': join(FIXTURE_PLUGINS, 'dup-a'),
        '@fixture/dup-b': join(FIXTURE_PLUGINS, 'dup-b'),
      }),
    );
    expect(run.code).toBe(1);
    expect(run.stderr).toContain('[CM_ERR_PLUGIN_DUPLICATE_TYPE]');
    expect(run.stderr).toContain(
      "@fixture/dup-b (same_type): type: duplicate job type 'same_type': already declared by @fixture/dup-a",
    );
  });

  it('a plugin with no stages stops the server', async () => {
    const run = await startServer(fixtureApp({ '@fixture/no-stages': join(FIXTURE_PLUGINS, 'no-stages') }));
    expect(run.code).toBe(1);
    expect(run.stderr).toContain(
      '@fixture/no-stages (no_stages): stages: expected a non-empty array of stages, received an empty array',
    );
  });

  it('cm compliance prints the ✅/❌ table for the real plugins', async () => {
    const run = await runTs('src/cli/main.ts', ['compliance']);
    expect(run.stderr).toBe('');
    expect(run.code).toBe(0);
    expect(run.stdout).toContain('| Job Type | Package | Status | Missing Elements |');
    expect(run.stdout).toContain('| `hello_world` | @coremachine/job-hello-world | ✅ | None |');
    expect(run.stdout).toMatch(/✅ (\d+)\/\1 jobs compliant \(100\.0%\)/);
  });

  it('cm compliance marks a broken plugin ❌ with the missing element and exits 1', async () => {
    const app = fixtureApp({
      '@fixture/missing-aggregate': join(FIXTURE_PLUGINS, 'missing-aggregate'),
      '@fixture/dup-a': join(FIXTURE_PLUGINS, 'dup-a'),
    });
    const run = await runTs('src/cli/main.ts', ['compliance'], { env: { CM_PLUGINS_FROM: app } });
    expect(run.code).toBe(1);
    expect(run.stdout).toContain('⚠️ 1/2 jobs compliant (50.0%)');
    expect(run.stdout).toContain('| `missing_aggregate` | @fixture/missing-aggregate | ❌ | `aggregate_job_results` |');
    expect(run.stdout).toContain('| `same_type` | @fixture/dup-a | ✅ | None |');
  });
});
