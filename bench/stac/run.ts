/**
 * Benchmark (not a test): stac_catalog_container over 1,000 rasters in Azurite.
 *
 *   source scripts/env.sh && node bench/stac/run.ts [--count 1000] [--rounds 1] [--batch <job default>]
 *
 * Input: `count` COGs of 256 x 256 px (Byte, UTM 31N, each at its own place and value), made
 * in memory with GDAL's COG driver and uploaded to a fresh container per round. Ours: the whole
 * job on one in-process worker: listing, then per raster one GET of the blob (small, no
 * sidecars), its sha2-256, GDAL reading those bytes from /vsimem/ (footprint, projection,
 * statistics and histogram from a decimated read), validation against STAC 1.0.0 + 3 extension
 * schemas, and one upsert per batch. Prints the stage and task windows, then the throughput.
 *
 * Side by side, in every round (alternating with the job):
 * - store only: validation and upsert of the items already built (what the baseline does);
 * - one GET per blob, nothing else (32 at once, through the same storage client): the floor
 *   Azurite and the SDK set on this machine for any cataloguing that reads every blob.
 * Baseline (published, not re-run here): pgstac bulk load of pre-built items via \copy,
 * ~780 items/s (pgstac/pypgstac figures, 2021). Load averages are printed before and after.
 */
import { randomBytes } from 'node:crypto';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { arg, cogBytes } from './fixtures.ts';
import { createTestMachine } from '@coremachine/test-kit';
import { ensureStacStore, searchItems, upsertItems, type StacItem } from '@coremachine/geo/stac';
import { createStorage, ensureAzurite, storageConfigFromEnv } from '../../packages/storage/src/index.ts';
import catalogContainer from '../../packages/job-stac-catalog-container/src/index.ts';

const BASELINE_ITEMS_PER_S = 780;
const count = arg('count', 1000);
const rounds = arg('rounds', 1);
const batchArg = process.argv.includes('--batch') ? arg('batch', 0) : null;
const load = () =>
  os
    .loadavg()
    .map((v) => v.toFixed(2))
    .join(' ');
console.log(`load average before: ${load()} (${os.availableParallelism()} cores), ${new Date().toISOString()}`);

// A private Azurite (own port and data folder): the shared one on 10000 is started and stopped
// by concurrent test runs. Real Azure when AZURE_STORAGE_* is set.
const port = arg('azurite-port', 10077);
const dataDir = await mkdtemp(path.join(os.tmpdir(), 'cm-bench-azurite-'));
const useAzurite = storageConfigFromEnv().kind === 'azurite';
const azurite = useAzurite ? await ensureAzurite({ port, location: dataDir }) : null;
const storage = createStorage(
  storageConfigFromEnv(useAzurite ? { CM_AZURITE_ENDPOINT: azurite!.endpoint } : process.env),
);
const stacSchema = `bench_stac_${randomBytes(4).toString('hex')}`;
const names = Array.from({ length: count }, (_, i) => `tiles/${String(i).padStart(5, '0')}.tif`);
const fixtures = names.map((_, i) => cogBytes(i));
const containers: string[] = [];

async function upload(): Promise<string> {
  const container = `bench-stac-${randomBytes(4).toString('hex')}`;
  containers.push(container);
  await storage.ensureContainer(container);
  const t = performance.now();
  for (let i = 0; i < count; i += 32)
    await Promise.all(names.slice(i, i + 32).map((name, k) => storage.uploadData(container, name, fixtures[i + k]!)));
  console.log(`input: ${count} COGs uploaded to ${container} in ${((performance.now() - t) / 1000).toFixed(1)} s`);
  return container;
}

/** CPU seconds (user + system) a process has used so far, from /proc (Linux); null elsewhere. */
async function cpuOf(pid: number | null | undefined): Promise<number | null> {
  if (!pid) return null;
  try {
    const fields = (await readFile(`/proc/${pid}/stat`, 'utf8')).split(') ')[1]!.split(' ');
    return (Number(fields[11]) + Number(fields[12])) / 100;
  } catch {
    return null;
  }
}
const cpuMs: { ours: number[]; azurite: number[] } = { ours: [], azurite: [] };

const median = (v: number[]) => [...v].sort((a, b) => a - b)[Math.floor(v.length / 2)]!;

// Production lease (the test-kit's 5 s lease is for fast crash tests, and a loaded machine misses it).
const tm = await createTestMachine({
  plugins: [catalogContainer],
  services: { storage, stac: { schema: stacSchema } },
  config: { leaseSeconds: 60 },
});
const ours: number[] = [];
const storeOnly: number[] = [];
const getOnly: number[] = [];
try {
  await ensureStacStore(tm.pool, stacSchema);
  for (let round = 1; round <= rounds; round++) {
    console.log(`--- round ${round} of ${rounds}, load average ${load()}`);
    const container = await upload();
    const cpu0 = process.cpuUsage();
    const az0 = await cpuOf(azurite?.pid);
    let t = performance.now();
    const job = await tm.submitAndWait(
      'stac_catalog_container',
      { container_name: container, ...(batchArg ? { batch_size: batchArg } : {}) },
      { timeoutMs: 30 * 60_000 },
    );
    const seconds = (performance.now() - t) / 1000;
    const cpu = process.cpuUsage(cpu0);
    const az1 = await cpuOf(azurite?.pid);
    cpuMs.ours.push((cpu.user + cpu.system) / 1000 / count);
    if (az0 !== null && az1 !== null) cpuMs.azurite.push(((az1 - az0) * 1000) / count);
    const summary = (job.result as { summary: Record<string, number> }).summary;
    if (job.status !== 'completed' || summary.inserted !== count)
      throw new Error(
        `job ended ${job.status}: ${JSON.stringify(summary)} ${JSON.stringify((job.result as { failures: unknown[] }).failures.slice(0, 3))}`,
      );
    ours.push(count / seconds);
    // Where the time went: stage and task windows relative to the submit.
    const t0 = Date.parse(job.createdAt ?? '') || Date.now() - seconds * 1000;
    const at = (iso: string | null) => (iso ? ((Date.parse(iso) - t0) / 1000).toFixed(2) : '-');
    for (const s of job.stages)
      console.log(`stage ${s.name}: ${at(s.startedAt)} s → ${at(s.completedAt)} s, ${s.total} tasks`);
    const tasks = await tm.tasks(job.id);
    for (const k of tasks.filter((x) => x.key !== 'list').slice(0, 12))
      console.log(`  task ${k.key}: ${at(k.startedAt)} s → ${at(k.completedAt)} s`);
    console.log(
      `job: ${seconds.toFixed(2)} s, ${(count / seconds).toFixed(0)} items/s; CPU per raster: worker process ${cpuMs.ours.at(-1)!.toFixed(2)} ms${cpuMs.azurite.length ? `, Azurite ${cpuMs.azurite.at(-1)!.toFixed(2)} ms` : ''}`,
    );

    // The store alone: re-upsert the items of this round (already built), 500 per statement.
    const items: StacItem[] = [];
    let token: string | undefined;
    do {
      const page = await searchItems(tm.pool, stacSchema, { limit: 1000, ...(token ? { token } : {}) });
      items.push(...page.items.filter((i) => i.properties['coremachine:container'] === container));
      token = page.next ?? undefined;
    } while (token);
    t = performance.now();
    for (let i = 0; i < items.length; i += 500) await upsertItems(tm.pool, stacSchema, items.slice(i, i + 500));
    storeOnly.push(items.length / ((performance.now() - t) / 1000));

    // One GET per blob and nothing else: what reading every blob costs here.
    t = performance.now();
    let next = 0;
    await Promise.all(
      Array.from({ length: 32 }, async () => {
        while (next < names.length) {
          const stream = await storage.readStream(container, names[next++]!);
          for await (const chunk of stream) void chunk;
        }
      }),
    );
    getOnly.push(count / ((performance.now() - t) / 1000));
    console.log(`store only ${storeOnly.at(-1)!.toFixed(0)} items/s, GET only ${getOnly.at(-1)!.toFixed(0)} blobs/s`);
  }

  const row = (label: string, v: number[]) =>
    `${label.padEnd(62)} ${median(v).toFixed(0).padStart(7)} items/s   ratio ${(median(v) / BASELINE_ITEMS_PER_S).toFixed(2)}x${v.length > 1 ? `   (rounds: ${v.map((x) => x.toFixed(0)).join(', ')})` : ''}`;
  console.log(
    `\nstac_catalog_container, ${count} rasters, batch_size ${batchArg ?? 'job default'}, one worker (${os.availableParallelism()} cores), median of ${rounds}:`,
  );
  console.log(row('ours: job end to end (list, read blobs, build, validate, upsert)', ours));
  console.log(row('ours: store only (validate + upsert of built items)', storeOnly));
  console.log(row('floor: one GET per blob, nothing else (32 at once)', getOnly));
  console.log(
    `${'baseline: pgstac bulk load via \\copy (published, 2021)'.padEnd(62)} ${String(BASELINE_ITEMS_PER_S).padStart(7)} items/s`,
  );
  console.log(
    `CPU per raster during the job (median): worker process ${median(cpuMs.ours).toFixed(2)} ms${cpuMs.azurite.length ? `, Azurite ${median(cpuMs.azurite).toFixed(2)} ms` : ''} (PostgreSQL not counted)`,
  );
  console.log(`load average after: ${load()}`);
} finally {
  await tm.pool.query(`DROP SCHEMA IF EXISTS "${stacSchema}" CASCADE`);
  await tm.close();
  for (const c of containers) await storage.deleteContainer(c);
  await azurite?.stop();
  await rm(dataDir, { recursive: true, force: true });
}
