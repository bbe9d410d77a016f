// Fails when a tracked file names an absolute path of one particular machine (a checkout, a
// home directory). Instructions in this repository use paths relative to its root.
import { execFileSync } from 'node:child_process';

const pattern = '(^|[^A-Za-z0-9_.~-])/(work|root|home|Users)/[A-Za-z0-9._-]';
let hits = '';
try {
  hits = execFileSync(
    'git',
    ['grep', '-n', '-I', '-E', pattern, '--', '.', ':!pnpm-lock.yaml', ':!scripts/check-paths.mjs'],
    {
      encoding: 'utf8',
    },
  );
} catch (err) {
  if (err.status !== 1) throw err; // 1: no match
}
if (hits.trim()) {
  console.error('Absolute machine paths in tracked files (use paths relative to the repository):\n' + hits);
  process.exit(1);
}
