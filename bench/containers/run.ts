/**
 * bench/containers: list_container_contents over N small blobs (default 100,000) in Azurite,
 * submit → completed, with the peak RSS of the worker process, next to plain-SDK baselines
 * over the same container:
 *   - "sdk list": a paged listing (5,000 per page), nothing else;
 *   - "sdk list + metadata": the same listing with `includeMetadata`, which is what the
 *     inventory records (the job asks for it too);
 *   - with BENCH_WITH_PROPS=1, "sdk list + getProperties": the listing plus a properties
 *     request for every blob, 64 in flight (what the job did before it recorded the listing);
 *   - "storage listPagesStreamed": the storage package's streamed listing alone (each List
 *     Blobs response parsed as it arrives), the one the job records from, without a database.
 * After timing, the job's inventory rows are compared with the metadata listing field by
 * field (name, size, content type, last modified, ETag, metadata) through a digest.
 *
 *   pnpm --filter @coremachine/bench containers [N=100000]
 *   pnpm --filter @coremachine/bench containers prepare [N]   # start Azurite and seed only
 *
 * It starts its own Azurite on port $CM_BENCH_AZURITE_PORT (10010) with data in
 * .data/azurite-bench, so a second run skips the seeding.
 *
 * Each measurement runs in its own child process so that peak RSS belongs to it alone. The
 * blobs are created on the first run (in parallel; blobs already present are skipped).
 */
import { execFileSync } from 'node:child_process';
import { createHash, type Hash } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import listContainerContents, { INVENTORY_TABLE } from '@coremachine/job-list-container-contents';
import { join } from 'node:path';
import { createStorage, ensureAzurite, repoRoot, storageConfigFromEnv } from '@coremachine/storage';
import { sdkContainer } from '@coremachine/storage/testing';
import { createTestMachine } from '@coremachine/test-kit';

// Its own Azurite (port and data folder) so 100,000 blobs do not weigh on the shared instance.
const PORT = Number(process.env.CM_BENCH_AZURITE_PORT ?? 10010);
process.env.CM_AZURITE_ENDPOINT = `http://127.0.0.1:${PORT}/devstoreaccount1`;
delete process.env.AZURE_STORAGE_CONNECTION_STRING;
delete process.env.AZURE_STORAGE_ACCOUNT_URL;
const N = Number(process.argv[3] ?? process.argv[2] ?? 100_000);
const MODE = process.argv[2] && Number.isNaN(Number(process.argv[2])) ? process.argv[2] : 'main';
const CONTAINER = `bench-list-${N}`;
const config = storageConfigFromEnv();
const name = (i: number) => `d${String(i % 50).padStart(2, '0')}/blob-${String(i).padStart(7, '0')}.txt`;
const indexOf = (blob: string) => Number(/blob-(\d+)\.txt$/.exec(blob)?.[1] ?? -1);

/** The bare SDK client: the baselines must not go through @coremachine/storage. */
const container = () => sdkContainer(config, CONTAINER);

async function pool<T>(
  items: AsyncIterable<T> | Iterable<T>,
  limit: number,
  fn: (x: T) => Promise<void>,
): Promise<void> {
  const inFlight = new Set<Promise<void>>();
  for await (const x of items) {
    const p: Promise<void> = fn(x).finally(() => inFlight.delete(p));
    inFlight.add(p);
    if (inFlight.size >= limit) await Promise.race(inFlight);
  }
  await Promise.all(inFlight);
}

const report = (o: Record<string, unknown>) =>
  process.stdout.write(JSON.stringify({ maxRssMb: Math.round(process.resourceUsage().maxRSS / 1024), ...o }) + '\n');

async function seed(): Promise<void> {
  const c = container();
  await c.createIfNotExists();
  const present = new Uint8Array(N);
  let have = 0;
  for await (const page of c.listBlobsFlat().byPage({ maxPageSize: 5000 })) {
    for (const b of page.segment.blobItems) {
      const i = indexOf(b.name);
      if (i >= 0 && i < N && !present[i]) {
        present[i] = 1;
        have += 1;
      }
    }
  }
  const t0 = performance.now();
  const missing = function* () {
    for (let i = 0; i < N; i++) if (!present[i]) yield i;
  };
  await pool(missing(), 64, async (i) => {
    await c.getBlockBlobClient(name(i)).uploadData(Buffer.from(`blob ${i}\n`), {
      blobHTTPHeaders: { blobContentType: 'text/plain' },
      metadata: { i: String(i) },
    });
  });
  report({ mode: 'seed', present: have, created: N - have, ms: Math.round(performance.now() - t0) });
}

/** One inventory row as the digest sees it (the same text from the SDK and from the table). */
function digestRow(
  h: Hash,
  b: { name: string; size: number; contentType: string | null; lastModified: Date; etag: string; metadata: object },
) {
  const meta = Object.fromEntries(Object.entries(b.metadata).sort(([x], [y]) => (x < y ? -1 : 1)));
  const etag = `"${b.etag.replace(/"/g, '')}"`;
  h.update(
    `${b.name}\t${b.size}\t${b.contentType}\t${b.lastModified.toISOString()}\t${etag}\t${JSON.stringify(meta)}\n`,
  );
}

async function sdkList(withProps: boolean, withMetadata = false): Promise<void> {
  const c = container();
  const t0 = performance.now();
  let count = 0,
    bytes = 0;
  const h = createHash('sha256');
  async function* names() {
    for await (const page of c.listBlobsFlat({ includeMetadata: withMetadata }).byPage({ maxPageSize: 5000 })) {
      for (const b of page.segment.blobItems) {
        count += 1;
        bytes += b.properties.contentLength ?? 0;
        if (withMetadata)
          digestRow(h, {
            name: b.name,
            size: b.properties.contentLength ?? 0,
            contentType: b.properties.contentType ?? null,
            lastModified: b.properties.lastModified,
            etag: b.properties.etag,
            metadata: b.metadata ?? {},
          });
        yield b.name;
      }
    }
  }
  if (withProps) {
    let propBytes = 0;
    await pool(names(), 64, async (n) => {
      const p = await c.getBlobClient(n).getProperties();
      propBytes += p.contentLength ?? 0;
    });
    bytes = propBytes;
  } else {
    for await (const _ of names()) {
      /* count only */
    }
  }
  const ms = Math.round(performance.now() - t0);
  const mode = withProps ? 'sdk-props' : withMetadata ? 'sdk-list-meta' : 'sdk-list';
  report({ mode, blobs: count, bytes, ms, ...(withMetadata ? { digest: h.digest('hex') } : {}) });
}

/**
 * The storage package's streamed listing alone (what the job lists through: each List Blobs
 * response parsed as it arrives), with metadata, through the same digest: no database.
 */
async function streamList(): Promise<void> {
  const storage = createStorage(config);
  const t0 = performance.now();
  let count = 0,
    bytes = 0;
  const h = createHash('sha256');
  for await (const page of storage.listPagesStreamed(CONTAINER, { includeMetadata: true })) {
    for (const b of page) {
      count += 1;
      bytes += b.size;
      digestRow(h, { ...b, metadata: b.metadata ?? {} });
    }
  }
  const ms = Math.round(performance.now() - t0);
  report({ mode: 'stream-list', blobs: count, bytes, ms, digest: h.digest('hex') });
}

async function job(): Promise<void> {
  const tm = await createTestMachine({
    plugins: [listContainerContents],
    services: { storage: createStorage(config) },
    config: { leaseSeconds: 60 },
  });
  try {
    const t0 = performance.now();
    const { jobId } = await tm.submit('list_container_contents', { container_name: CONTAINER });
    const view = await tm.waitFor(jobId, { timeoutMs: 30 * 60_000 });
    const ms = Math.round(performance.now() - t0);
    const maxRssMb = Math.round(process.resourceUsage().maxRSS / 1024); // before the digest below
    const r = view.result as {
      summary: { total_blobs_found: number; successful_analyses: number; total_size_bytes: number };
    } | null;
    const [list] = await tm.tasks(jobId, { stage: 1 });
    // The inventory rows, in ordinal order, through the same digest as the SDK listing.
    const h = createHash('sha256');
    for (let from = 0; ; from += 5000) {
      const { rows } = await tm.pool.query<{
        blob_name: string;
        size_bytes: string;
        content_type: string | null;
        last_modified: Date;
        etag: string;
        metadata: object;
      }>(
        `SELECT blob_name, size_bytes, content_type, last_modified, etag, metadata FROM ${INVENTORY_TABLE}
         WHERE job_id = $1 AND ordinal >= $2 AND ordinal < $3 ORDER BY ordinal`,
        [jobId, from, from + 5000],
      );
      if (rows.length === 0) break;
      for (const x of rows)
        digestRow(h, {
          name: x.blob_name,
          size: Number(x.size_bytes),
          contentType: x.content_type,
          lastModified: x.last_modified,
          etag: x.etag,
          metadata: x.metadata,
        });
    }
    await tm.pool.query(`DELETE FROM ${INVENTORY_TABLE} WHERE job_id = $1`, [jobId]);
    report({
      maxRssMb,
      digest: h.digest('hex'),
      prefixes: (list?.output as { prefixes_listed?: number } | undefined)?.prefixes_listed ?? 0,
      mode: 'job',
      status: view.status,
      blobs: r?.summary.total_blobs_found,
      analysed: r?.summary.successful_analyses,
      bytes: r?.summary.total_size_bytes,
      tasks: view.stages.map((s) => s.total),
      ms,
    });
  } finally {
    await tm.close();
  }
}

// BENCH_MAX_OLD_SPACE_MB caps the V8 heap of the measured processes: peak RSS mostly reflects
// how lazily V8 collects listing garbage; a run under a small cap shows what is really live.
const heapCap = process.env.BENCH_MAX_OLD_SPACE_MB
  ? [`--max-old-space-size=${process.env.BENCH_MAX_OLD_SPACE_MB}`]
  : [];

function child(mode: string): Record<string, number | string> {
  const out = execFileSync(
    process.execPath,
    [...heapCap, '--import', 'tsx', fileURLToPath(import.meta.url), mode, String(N)],
    { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'], maxBuffer: 1 << 20 },
  );
  return JSON.parse(out.trim().split('\n').at(-1)!);
}

async function main(): Promise<void> {
  const azurite = await ensureAzurite({ port: PORT, location: join(repoRoot(), '.data', 'azurite-bench') });
  try {
    const s = child('seed');
    console.log(`container ${CONTAINER}: ${s.present} blobs present, ${s.created} created in ${s.ms} ms`);
    const list = child('sdk-list');
    const meta = child('sdk-list-meta');
    const props = process.env.BENCH_WITH_PROPS === '1' ? child('sdk-props') : null;
    const streamed = child('stream-list');
    if (streamed.digest !== meta.digest || streamed.blobs !== N)
      throw new Error(`the streamed listing differs from the SDK listing: ${JSON.stringify({ streamed, sdk: meta })}`);
    const j = child('job');
    if (j.status !== 'completed' || j.blobs !== N || j.analysed !== N)
      throw new Error(`job did not analyse all blobs: ${JSON.stringify(j)}`);
    if (j.digest !== meta.digest || j.bytes !== meta.bytes)
      throw new Error(`inventory differs from the SDK listing: ${JSON.stringify({ job: j, sdk: meta })}`);
    const row = (label: string, r: Record<string, number | string>) =>
      console.log(
        `${label.padEnd(34)} ${(Number(r.ms) / 1000).toFixed(2).padStart(8)} s   peak RSS ${String(r.maxRssMb).padStart(5)} MB`,
      );
    console.log(`\nN = ${N} blobs`);
    row('list_container_contents (job)', j);
    row('baseline: sdk list', list);
    row('baseline: sdk list + metadata', meta);
    if (props) row('baseline: sdk list + getProperties', props);
    row('storage listPagesStreamed (no db)', streamed);
    const ratio = (r: Record<string, number | string>) => (Number(j.ms) / Number(r.ms)).toFixed(2);
    console.log(`\nratio job / sdk list              ${ratio(list)}x`);
    console.log(`ratio job / sdk list + metadata   ${ratio(meta)}x`);
    if (props) console.log(`ratio job / sdk list + properties ${ratio(props)}x`);
    console.log(
      `job tasks per stage: ${JSON.stringify(j.tasks)}; directories listed apart: ${j.prefixes}; bytes: job ${j.bytes}, sdk ${meta.bytes}`,
    );
    console.log(`inventory = sdk listing, field by field (sha256 ${String(j.digest).slice(0, 16)}…)`);
    const rss = Number(j.maxRssMb);
    const time = Math.max(Number(ratio(list)), Number(ratio(meta)));
    console.log(
      `targets: job ≤ 1.3x the sdk listing (${time.toFixed(2)}x: ${time <= 1.3 ? 'met' : 'not met'}), ` +
        `job peak RSS < 300 MB (${rss} MB: ${rss < 300 ? 'met' : 'not met'})`,
    );
  } finally {
    await azurite.stop();
  }
}

/** Starts the bench's Azurite and creates the blobs, nothing else (`containers prepare N`). */
async function prepare(): Promise<void> {
  const azurite = await ensureAzurite({ port: PORT, location: join(repoRoot(), '.data', 'azurite-bench') });
  try {
    const s = child('seed');
    console.log(`container ${CONTAINER}: ${s.present} blobs present, ${s.created} created in ${s.ms} ms`);
  } finally {
    await azurite.stop();
  }
}

const modes: Record<string, () => Promise<void>> = {
  main,
  prepare,
  seed,
  'sdk-list': () => sdkList(false),
  'sdk-props': () => sdkList(true),
  'sdk-list-meta': () => sdkList(false, true),
  'stream-list': streamList,
  job,
};
await modes[MODE]!();
