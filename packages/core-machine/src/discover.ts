import { readFile } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { pathToFileURL } from 'node:url';
import type { AnyJobDefinition } from './define-job.ts';
import { assertCompliant, checkCompliance, checkUniqueTypes, type ComplianceReport } from './compliance.ts';

export interface DiscoveredPlugin {
  packageName: string;
  manifest: AnyJobDefinition;
}

export interface DiscoveryResult {
  plugins: DiscoveredPlugin[];
  reports: ComplianceReport[];
}

/**
 * Finds the job plugins among the dependencies of the app whose package.json is at
 * `appPackageJson`: a dependency is a plugin when its own package.json has
 * `"coremachine": { "plugin": true }`. Each is imported and its default export checked.
 * Nothing is thrown here; `loadPlugins` turns failed reports into the load-time error.
 */
export async function discoverPlugins(appPackageJson: string): Promise<DiscoveryResult> {
  const app = JSON.parse(await readFile(appPackageJson, 'utf8')) as { dependencies?: Record<string, string> };
  const entries: Array<{ packageName: string; manifest: unknown }> = [];
  const importFailures: ComplianceReport[] = [];
  for (const name of Object.keys(app.dependencies ?? {}).sort()) {
    const pkgJsonPath = findPackageJson(dirname(appPackageJson), name);
    if (!pkgJsonPath) continue;
    const pkg = JSON.parse(await readFile(pkgJsonPath, 'utf8')) as { coremachine?: { plugin?: boolean }; exports?: unknown; main?: string };
    if (!pkg.coremachine?.plugin) continue;
    const entry = resolveEntry(dirname(pkgJsonPath), pkg);
    let mod: { default?: unknown };
    try {
      mod = (await import(pathToFileURL(entry).href)) as { default?: unknown };
    } catch (err) {
      importFailures.push({ packageName: name, type: null, version: null, stages: [], compliant: false,
        problems: [{ element: 'manifest', message: `failed to import ${entry}: ${(err as Error).message}` }] });
      continue;
    }
    entries.push({ packageName: name, manifest: mod.default });
  }
  const checked = checkPlugins(entries);
  return { plugins: checked.plugins, reports: [...checked.reports, ...importFailures] };
}

/** node_modules lookup, walking up; package `exports` usually hide package.json from require.resolve. */
function findPackageJson(fromDir: string, name: string): string | null {
  for (let dir = fromDir; ; dir = dirname(dir)) {
    const candidate = join(dir, 'node_modules', name, 'package.json');
    if (existsSync(candidate)) return candidate;
    if (dirname(dir) === dir) return null;
  }
}

function resolveEntry(dir: string, pkg: { exports?: unknown; main?: string }): string {
  const exp = pkg.exports as string | Record<string, unknown> | undefined;
  const root = typeof exp === 'string' ? exp : (exp?.['.'] as string | Record<string, string> | undefined);
  const rel = typeof root === 'string' ? root : root?.['import'] ?? root?.['default'] ?? pkg.main ?? 'index.js';
  return join(dir, rel);
}

/** Checks a list of manifests given directly (tests, embedding) the way discovery does. */
export function checkPlugins(entries: Array<{ packageName: string; manifest: unknown }>): DiscoveryResult {
  const reports = entries.map((e) => checkCompliance(e.packageName, e.manifest));
  checkUniqueTypes(reports);
  return {
    plugins: entries.filter((_, i) => reports[i]!.compliant).map((e) => ({ packageName: e.packageName, manifest: e.manifest as AnyJobDefinition })),
    reports,
  };
}

/** Discovery plus compliance: throws the error that stops the server when anything is wrong. */
export async function loadPlugins(appPackageJson: string): Promise<DiscoveredPlugin[]> {
  const { plugins, reports } = await discoverPlugins(appPackageJson);
  assertCompliant(reports);
  return plugins;
}
