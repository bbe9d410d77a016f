// Runs typecheck and every package's tests through turbo, then prints the totals over all
// packages as one line: "N passed, N failed[, N skipped]". Exit code: non-zero on any failure.
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';

const root = new URL('..', import.meta.url).pathname;
const dirs = ['apps', 'packages'].flatMap((d) => readdirSync(join(root, d)).map((p) => join(root, d, p))).concat([join(root, 'tests')]);
for (const d of dirs) rmSync(join(d, '.vitest-results.json'), { force: true });

const turbo = (args) => spawnSync('turbo', [...args, '--concurrency=2', '--env-mode=loose', '--output-logs=errors-only', ...process.argv.slice(2)], { cwd: root, stdio: 'inherit' }).status ?? 1;
const started = Date.now();
const typecheck = turbo(['run', 'typecheck']);
const tests = turbo(['run', 'test', '--continue']);

let passed = 0, failed = 0, skipped = 0;
for (const d of dirs) {
  const file = join(d, '.vitest-results.json');
  if (!existsSync(file)) continue;
  const r = JSON.parse(readFileSync(file, 'utf8'));
  passed += r.numPassedTests ?? 0;
  // A test file that failed without a failed test (it did not load, a hook threw) counts as one.
  failed += (r.numFailedTests ?? 0) + (r.testResults ?? []).filter((s) => s.status === 'failed' && !(s.assertionResults ?? []).some((a) => a.status === 'failed')).length;
  skipped += (r.numPendingTests ?? 0) + (r.numTodoTests ?? 0);
  const bad = (r.testResults ?? []).flatMap((s) => (s.assertionResults ?? []).filter((a) => a.status === 'failed').map((a) => `  ✗ ${s.name.replace(root, '')}: ${a.fullName}`));
  if (bad.length) console.log(bad.join('\n'));
}
if (typecheck !== 0) {
  console.log('typecheck failed');
  failed += 1;
}
if (tests !== 0 && failed === 0) failed = 1; // a package failed before reporting (e.g. crashed)
console.log(`(${Math.round((Date.now() - started) / 1000)} s)`);
console.log(`${passed} passed, ${failed} failed${skipped ? `, ${skipped} skipped` : ''}`);
process.exit(failed ? 1 : 0);
