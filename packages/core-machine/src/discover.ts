import { pathToFileURL } from 'node:url';
import type { AnyJobDefinition } from './define-job.ts';
import { assertCompliant, checkCompliance, checkUniqueTypes, type ComplianceReport } from './compliance.ts';
import { findPluginPackages } from './plugin-registry.ts';

export interface DiscoveredPlugin {
  packageName: string;
  manifest: AnyJobDefinition;
}

export interface DiscoveryResult {
  plugins: DiscoveredPlugin[];
  reports: ComplianceReport[];
}

/**
 * Imports the job plugins among the dependencies of the app whose package.json is at
 * `appPackageJson` (the list comes from `findPluginPackages`) and checks each default export.
 * Nothing is thrown here; `loadPlugins` turns failed reports into the load-time error.
 */
export async function discoverPlugins(appPackageJson: string): Promise<DiscoveryResult> {
  const entries: Array<{ packageName: string; manifest: unknown }> = [];
  const importFailures: ComplianceReport[] = [];
  for (const { packageName, entry } of findPluginPackages(appPackageJson)) {
    try {
      const mod = (await import(pathToFileURL(entry).href)) as { default?: unknown };
      entries.push({ packageName, manifest: mod.default });
    } catch (err) {
      importFailures.push({
        packageName,
        type: null,
        version: null,
        stages: [],
        compliant: false,
        problems: [{ element: 'manifest', message: `failed to import ${packageName}: ${(err as Error).message}` }],
      });
    }
  }
  const checked = checkPlugins(entries);
  return { plugins: checked.plugins, reports: [...checked.reports, ...importFailures] };
}

/**
 * Checks a list of manifests given directly (tests, embedding) the way discovery does. A
 * manifest handed over without its package is named after its type (`<job type>`).
 */
export function checkPlugins(entries: Array<{ packageName: string; manifest: unknown }>): DiscoveryResult {
  const reports = entries.map((e) => checkCompliance(e.packageName, e.manifest));
  checkUniqueTypes(reports);
  return {
    plugins: entries
      .filter((_, i) => reports[i]!.compliant)
      .map((e) => ({ packageName: e.packageName, manifest: e.manifest as AnyJobDefinition })),
    reports,
  };
}

/** `checkPlugins` for bare manifests: each is named `<type>` in the report. */
export function checkManifests(manifests: readonly unknown[]): DiscoveryResult {
  return checkPlugins(
    manifests.map((manifest) => {
      const type = (manifest as { type?: unknown } | null)?.type;
      return { packageName: `<${typeof type === 'string' ? type : 'unnamed'}>`, manifest };
    }),
  );
}

/** Discovery plus compliance: throws the error that stops the server when anything is wrong. */
export async function loadPlugins(appPackageJson: string): Promise<DiscoveredPlugin[]> {
  const { plugins, reports } = await discoverPlugins(appPackageJson);
  assertCompliant(reports);
  return plugins;
}
