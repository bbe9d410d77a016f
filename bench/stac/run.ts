/**
 * Benchmark (not a test): stac_catalog_container over 1,000 rasters in Azurite.
 *
 *   source scripts/env.sh && node bench/stac/run.ts [--count 1000] [--batch <job default>]
 *
 * Input: `count` COGs of 256 x 256 px (Byte, UTM 31N, each at its own place and value), made
 * in memory with GDAL's COG driver and uploaded to a fresh container. Ours: the whole job on one
 * in-process worker: listing, then per raster one GET of the blob (small, no sidecars), its
 * sha2-256, GDAL reading those bytes from /vsimem/ (footprint, projection, statistics and
 * histogram from a decimated read), validation against STAC 1.0.0 + 3 extension schemas, and
 * one upsert per batch. Prints the stage and task windows, then the throughput.
 * Also reported: the store alone (upsert of already-built items), which is what the baseline does.
 * Baseline (published, not re-run here): pgstac bulk load of pre-built items via \copy,
 * ~780 items/s (pgstac/pypgstac figures, 2021).
 */
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { arg, cogBytes } from './fixtures.ts';
import { createTestMachine } from '@coremachine/test-kit';
import { ensureStacStore, searchItems, upsertItems, type StacItem } from '@coremachine/geo/stac';
import { createStorage, ensureAzurite, storageConfigFromEnv } from '../../packages/storage/src/index.ts';
import catalogContainer from '../../packages/job-stac-catalog-container/src/index.ts';

const BASELINE_ITEMS_PER_S = 780;
const count = arg('count', 1000);
const batchArg = process.argv.includes('--batch') ? arg('batch', 0) : null;

// A private Azurite (own port and data folder): the shared one on 10000 is started and stopped
// by concurrent test runs. Real Azure when AZURE_STORAGE_* is set.
const port = arg('azurite-port', 10077);
const dataDir = await mkdtemp(path.join(os.tmpdir(), 'cm-bench-azurite-'));
const useAzurite = storageConfigFromEnv().kind === 'azurite';
const azurite = useAzurite ? await ensureAzurite({ port, location: dataDir }) : null;
const storage = createStorage(
  storageConfigFromEnv(useAzurite ? { CM_AZURITE_ENDPOINT: azurite!.endpoint } : process.env),
);
const container = `bench-stac-${randomBytes(4).toString('hex')}`;
const stacSchema = `bench_stac_${randomBytes(4).toString('hex')}`;
await storage.ensureContainer(container);

let t = performance.now();
const names = Array.from({ length: count }, (_, i) => `tiles/${String(i).padStart(5, '0')}.tif`);
for (let i = 0; i < count; i += 32) {
  await Promise.all(names.slice(i, i + 32).map((name, k) => storage.uploadData(container, name, cogBytes(i + k))));
}
console.log(`input: ${count} COGs uploaded to ${container} in ${((performance.now() - t) / 1000).toFixed(1)} s`);

// Production lease (the test-kit's 5 s lease is for fast crash tests, and a loaded machine misses it).
const tm = await createTestMachine({
  plugins: [catalogContainer],
  services: { storage, stac: { schema: stacSchema } },
  config: { leaseSeconds: 60 },
});
try {
  await ensureStacStore(tm.pool, stacSchema);
  t = performance.now();
  const job = await tm.submitAndWait(
    'stac_catalog_container',
    { container_name: container, ...(batchArg ? { batch_size: batchArg } : {}) },
    { timeoutMs: 30 * 60_000 },
  );
  const seconds = (performance.now() - t) / 1000;
  const summary = (job.result as { summary: Record<string, number> }).summary;
  if (job.status !== 'completed' || summary.inserted !== count)
    throw new Error(
      `job ended ${job.status}: ${JSON.stringify(summary)} ${JSON.stringify((job.result as { failures: unknown[] }).failures.slice(0, 3))}`,
    );
  const ours = count / seconds;
  // Where the time went: stage and task windows relative to the submit.
  const t0 = Date.parse(job.createdAt ?? '') || Date.now() - seconds * 1000;
  const at = (iso: string | null) => (iso ? ((Date.parse(iso) - t0) / 1000).toFixed(2) : '-');
  for (const s of job.stages)
    console.log(`stage ${s.name}: ${at(s.startedAt)} s → ${at(s.completedAt)} s, ${s.total} tasks`);
  const tasks = await tm.tasks(job.id);
  for (const k of tasks.filter((x) => x.key !== 'list').slice(0, 12))
    console.log(`  task ${k.key}: ${at(k.startedAt)} s → ${at(k.completedAt)} s`);
  console.log(`job completed at ${at(job.completedAt ?? null)} s`);

  // The store alone: re-upsert the same items (already built), 500 per statement.
  const items: StacItem[] = [];
  let token: string | undefined;
  do {
    const page = await searchItems(tm.pool, stacSchema, { limit: 1000, ...(token ? { token } : {}) });
    items.push(...page.items);
    token = page.next ?? undefined;
  } while (token);
  t = performance.now();
  for (let i = 0; i < items.length; i += 500) await upsertItems(tm.pool, stacSchema, items.slice(i, i + 500));
  const storeOnly = items.length / ((performance.now() - t) / 1000);

  const row = (label: string, v: number) =>
    `${label.padEnd(58)} ${v.toFixed(0).padStart(7)} items/s   ratio ${(v / BASELINE_ITEMS_PER_S).toFixed(2)}x`;
  console.log(
    `\nstac_catalog_container, ${count} rasters, batch_size ${batchArg ?? 'default'}, one worker (2 cores): ${seconds.toFixed(1)} s`,
  );
  console.log(row('ours: job end to end (read blobs, build, validate, upsert)', ours));
  console.log(row('ours: store only (validate + upsert of built items)', storeOnly));
  console.log(
    `${'baseline: pgstac bulk load via \\copy (published, 2021)'.padEnd(58)} ${String(BASELINE_ITEMS_PER_S).padStart(7)} items/s`,
  );
} finally {
  await tm.pool.query(`DROP SCHEMA IF EXISTS "${stacSchema}" CASCADE`);
  await tm.close();
  await storage.deleteContainer(container);
  await azurite?.stop();
  await rm(dataDir, { recursive: true, force: true });
}
