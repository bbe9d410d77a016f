// Writes src/plugins.generated.ts: the static type of every job plugin this app depends on, so
// the tRPC router (and the typed client) know each job's parameters. The list comes from the
// same registry as runtime discovery (@coremachine/core-machine's findPluginPackages).
//   gen-plugins           rewrite the file when it differs
//   gen-plugins --check   exit 1 when the committed file is stale (run by lint)
import { readFileSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { findPluginPackages, renderPluginTypes } from '@coremachine/core-machine/plugin-registry';

const appPackageJson = fileURLToPath(new URL('../package.json', import.meta.url));
const target = fileURLToPath(new URL('../src/plugins.generated.ts', import.meta.url));
const wanted = renderPluginTypes(findPluginPackages(appPackageJson));
let current = '';
try {
  current = readFileSync(target, 'utf8');
} catch {}

if (process.argv.includes('--check')) {
  if (current !== wanted) {
    console.error(
      'apps/server/src/plugins.generated.ts is stale: run `pnpm --filter @coremachine/server gen` and commit it.',
    );
    process.exit(1);
  }
} else if (current !== wanted) {
  writeFileSync(target, wanted);
  console.log('wrote apps/server/src/plugins.generated.ts');
}
