// `make test`: lint, format check and typecheck first (any failure stops the run), then every
// package's tests through turbo. Prints one line per package (passed, failed, skipped), then
// the totals as "N passed, N failed[, N skipped]". A package whose test script ran no test
// fails the run. Exit code: non-zero on any failure.
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { join, relative } from 'node:path';

const root = new URL('..', import.meta.url).pathname;
const extra = process.argv.slice(2);
const packages = ['apps', 'packages']
  .flatMap((d) => readdirSync(join(root, d)).map((p) => join(root, d, p)))
  .concat([join(root, 'tests')])
  .filter((dir) => existsSync(join(dir, 'package.json')))
  .map((dir) => ({ dir, pkg: JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')) }))
  .filter(({ pkg }) => pkg.scripts?.test);
for (const { dir } of packages) rmSync(join(dir, '.vitest-results.json'), { force: true });

const turbo = (args) =>
  spawnSync('turbo', [...args, '--concurrency=2', '--env-mode=loose', '--output-logs=errors-only', ...extra], {
    cwd: root,
    stdio: 'inherit',
  }).status ?? 1;
const started = Date.now();

const checks = turbo(['run', 'lint', 'typecheck', '//#lint:workspace', '//#format:check:root', '--continue']);
if (checks !== 0) {
  console.log(
    'lint, format or typecheck failed (run `pnpm lint`, `pnpm format:check`, `pnpm typecheck`): no tests run',
  );
  console.log('0 passed, 1 failed');
  process.exit(1);
}
const tests = turbo(['run', 'test', '--continue']);

let passed = 0;
let failed = 0;
let skipped = 0;
const lines = [];
const failures = [];
for (const { dir, pkg } of packages) {
  const file = join(dir, '.vitest-results.json');
  if (!existsSync(file)) {
    lines.push(`  ✗ ${pkg.name}: no results (the test run crashed or was not started)`);
    failed += 1;
    continue;
  }
  const r = JSON.parse(readFileSync(file, 'utf8'));
  const suites = r.testResults ?? [];
  // A test file that failed without a failed test (it did not load, a hook threw) counts as one.
  const brokenFiles = suites.filter(
    (s) => s.status === 'failed' && !(s.assertionResults ?? []).some((a) => a.status === 'failed'),
  ).length;
  const p = r.numPassedTests ?? 0;
  const f = (r.numFailedTests ?? 0) + brokenFiles;
  const s = (r.numPendingTests ?? 0) + (r.numTodoTests ?? 0);
  const none = p + f + s === 0;
  passed += p;
  failed += f + (none ? 1 : 0);
  skipped += s;
  lines.push(
    `  ${f || none ? '✗' : '✓'} ${pkg.name}: ${p} passed, ${f} failed, ${s} skipped${none ? ' (ran no tests)' : ''}`,
  );
  for (const suite of suites) {
    for (const a of suite.assertionResults ?? []) {
      if (a.status === 'failed') failures.push(`  ✗ ${relative(root, suite.name)}: ${a.fullName}`);
    }
    if (suite.status === 'failed' && !(suite.assertionResults ?? []).some((a) => a.status === 'failed')) {
      failures.push(`  ✗ ${relative(root, suite.name)}: ${(suite.message ?? 'failed to run').split('\n')[0]}`);
    }
  }
}
if (tests !== 0 && failed === 0) failed = 1; // a package failed before reporting
if (failures.length) console.log(failures.join('\n'));
console.log(lines.join('\n'));
console.log(`(${Math.round((Date.now() - started) / 1000)} s)`);
console.log(`${passed} passed, ${failed} failed${skipped ? `, ${skipped} skipped` : ''}`);
process.exit(failed ? 1 : 0);
