/**
 * Retention and re-runs against a real server (createApp with a worker, its own ledger, vector
 * and STAC schemas, its own containers). Purge: of six settled jobs, those settled before the
 * cut-off go with exactly their tasks, stages, events, inventory rows and leftover part blobs,
 * counted before and after; the others keep everything. Delete: one job by id. Re-run: a
 * summarize_container job re-run after its blob was replaced reports the new size, the first
 * run kept in `runs` and each run's events apart.
 */
import { randomBytes } from 'node:crypto';
import { BlobServiceClient } from '@azure/storage-blob';
import { azuriteConnectionString, type BlobStorage } from '@coremachine/storage';
import { dropSchemas, uniqueSchema } from '@coremachine/test-kit';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createApp, type App } from './app.ts';
import { parseEnv } from './env.ts';
import { PURGE_HOOKS } from './purge-hooks.ts';
import { startRetention } from './retention.ts';

const ADMIN = 'retention-test-bootstrap-token-0123456789abcdef';
const tag = randomBytes(4).toString('hex');
const schema = uniqueSchema('cmret');
const vschema = `ret_geo_${tag}`;
const stacSchema = `ret_stac_${tag}`;
const old = `ret-old-${tag}`;
const recent = `ret-new-${tag}`;
const out = `ret-out-${tag}`;

describe('retention, delete and re-run', () => {
  let app: App;
  let storage: BlobStorage;
  const api = async (method: string, path: string, body?: unknown) => {
    const res = await fetch(`${app.url}/api/v1${path}`, {
      method,
      headers: { authorization: `Bearer ${ADMIN}`, ...(body ? { 'content-type': 'application/json' } : {}) },
      ...(body ? { body: JSON.stringify(body) } : {}),
    });
    return { status: res.status, body: (await res.json()) as any };
  };
  const settle = async (jobId: string) => {
    for (let i = 0; i < 600; i++) {
      const job = await app.machine.getJob(jobId);
      if (job && ['completed', 'completed_with_errors', 'failed', 'cancelled'].includes(job.status)) return job;
      await new Promise((r) => setTimeout(r, 100));
    }
    throw new Error(`job ${jobId} did not settle`);
  };
  const submit = async (type: string, params: unknown) => {
    const r = await api('POST', '/jobs', { type, params });
    expect(r.status, JSON.stringify(r.body)).toBe(201);
    return settle(r.body.jobId as string);
  };
  const q = async (sql: string, args: unknown[] = []) => (await app.machine.pool.query(sql, args)).rows;
  const count = async (table: string, ids: string[]) =>
    (await q(`SELECT count(*)::int AS n FROM "${schema}".${table} WHERE job_id = ANY($1)`, [ids]))[0].n as number;
  const blobs = async (container: string, prefix?: string) => {
    const names: string[] = [];
    for await (const b of storage.list(container, prefix ? { prefix } : {})) names.push(b.name);
    return names;
  };

  beforeAll(async () => {
    app = await createApp({
      env: parseEnv({
        CM_API_PORT: '0',
        CM_SCHEMA: schema,
        CM_LOG_LEVEL: 'error',
        CM_API_TOKEN: ADMIN,
        CM_GEO_SCHEMAS: vschema,
        CM_STAC_SCHEMA: stacSchema,
      }),
      // export_vector's stages retry 4 times whatever maxAttempts says: short delays keep it quick.
      config: { maxAttempts: 1, retryBaseDelayMs: 50, retryMaxDelayMs: 50 },
    });
    storage = app.machine.services.storage;
    for (const c of [old, recent, out]) await storage.ensureContainer(c);
    for (let i = 0; i < 3; i++) await storage.uploadData(old, `f${i}.txt`, 'x'.repeat(10 + i));
    for (let i = 0; i < 2; i++) await storage.uploadData(recent, `g${i}.txt`, 'y'.repeat(5));
    await app.machine.pool
      .query(`CREATE TABLE "${vschema}".pts (fid bigint PRIMARY KEY, name text, geom geometry(Point, 4326) NOT NULL);
      INSERT INTO "${vschema}".pts SELECT i, 'p' || i, st_setsrid(st_makepoint(i * 0.01, i * 0.01), 4326) FROM generate_series(1, 2500) i`);
  }, 120_000);
  afterAll(async () => {
    await app?.close();
    await dropSchemas(schema);
    const { default: pg } = await import('pg');
    const pool = new pg.Pool({ connectionString: parseEnv({}).DATABASE_URL, max: 1 });
    await pool.query(`DROP SCHEMA IF EXISTS "${vschema}" CASCADE; DROP SCHEMA IF EXISTS "${stacSchema}" CASCADE`);
    await pool.end();
    for (const c of [old, recent, out]) await storage?.deleteContainer(c).catch(() => false);
  });

  it('purges exactly the jobs settled before the cut-off, with their rows and blobs', async () => {
    const helloOld = await submit('hello_world', { n: 2, message: `old ${tag}` });
    const helloNew = await submit('hello_world', { n: 3, message: `new ${tag}` });
    const listOld = await submit('list_container_contents', { container_name: old });
    const listNew = await submit('list_container_contents', { container_name: recent });
    // An export whose assembly fails (its output blob is leased by someone else).
    await storage.uploadData(out, 'pts.gpkg', 'held');
    const endpoint = storage.config.kind === 'azurite' ? storage.config.endpoint : undefined;
    const lease = BlobServiceClient.fromConnectionString(azuriteConnectionString(endpoint))
      .getContainerClient(out)
      .getBlobClient('pts.gpkg')
      .getBlobLeaseClient();
    await lease.acquireLease(-1);
    const exportOld = await submit('export_vector', {
      schema: vschema,
      table_name: 'pts',
      format: 'gpkg',
      container_name: out,
      blob_name: 'pts.gpkg',
      chunk_size: 1000,
      stac_collection: `ret-${tag}`,
    });
    await lease.releaseLease();
    expect([helloOld, helloNew, listOld, listNew].map((j) => j.status)).toEqual([
      'completed',
      'completed',
      'completed',
      'completed',
    ]);
    expect(exportOld.status).toBe('failed');
    // The failing task deleted the job's parts; what a worker killed between uploading a part and
    // settling its task leaves behind is one more under the job's prefix (made here), and a
    // blob outside that prefix must stay.
    expect(await blobs(out, 'pts.gpkg.parts/')).toEqual([]);
    const prefix = `pts.gpkg.parts/${exportOld.id.slice(0, 16)}/`;
    await storage.uploadData(out, `${prefix}part-00001.gpkg`, 'left by a dead worker');
    await storage.uploadData(out, `${prefix}part-00002.gpkg`, 'left by a dead worker');
    await storage.uploadData(out, 'pts.gpkg.parts/0000000000000000/part-00001.gpkg', 'another job');

    const gone = [helloOld.id, listOld.id, exportOld.id];
    const kept = [helloNew.id, listNew.id];
    // Settled ten days ago (the clock of the ledger, not of the test).
    await q(`UPDATE "${schema}".jobs SET completed_at = now() - interval '10 days' WHERE id = ANY($1)`, [gone]);
    const inventory = async (ids: string[]) =>
      (await q(`SELECT count(*)::int AS n FROM inventory.list_container_inventory WHERE job_id = ANY($1)`, [ids]))[0]
        .n as number;
    const before = {
      goneTasks: await count('tasks', gone),
      goneEvents: await count('job_events', gone),
      keptTasks: await count('tasks', kept),
      keptEvents: await count('job_events', kept),
      keptStages: await count('stages', kept),
      goneInventory: await inventory(gone),
      keptInventory: await inventory(kept),
    };
    // hello_world 2 + 2, list_container_contents 1 (no analysis stage tasks), export_vector 1 + 3 chunks + 1.
    expect(before.goneTasks).toBe(4 + 1 + 5);
    expect([before.goneInventory, before.keptInventory]).toEqual([3, 2]);

    // One purge at a time: while another process holds the purge lock, a purge does nothing.
    const other = await app.machine.pool.connect();
    try {
      await other.query('SELECT pg_advisory_lock(hashtext($1))', [`coremachine:purge:${schema}`]);
      const skipped = await api('POST', '/purge', { olderThan: '7d' });
      expect([skipped.status, skipped.body.skipped, skipped.body.jobs]).toEqual([200, true, 0]);
      expect(await count('tasks', gone)).toBe(before.goneTasks);
    } finally {
      await other.query('SELECT pg_advisory_unlock(hashtext($1))', [`coremachine:purge:${schema}`]);
      other.release();
    }

    const purged = await api('POST', '/purge', { olderThan: '7d' });
    expect(purged.status).toBe(200);
    expect(purged.body).toMatchObject({
      skipped: false,
      jobs: 3,
      tasks: before.goneTasks,
      events: before.goneEvents,
      inventory_rows: 3,
      blobs: 2,
    });
    // Exactly the three: their rows all gone, the others' all there.
    const remaining = (await q(`SELECT id FROM "${schema}".jobs ORDER BY id`)).map((r) => r.id);
    expect(remaining).toEqual([...kept].sort());
    for (const table of ['tasks', 'job_events', 'stages', 'job_runs']) expect(await count(table, gone)).toBe(0);
    expect(await count('tasks', kept)).toBe(before.keptTasks);
    expect(await count('job_events', kept)).toBe(before.keptEvents);
    expect(await count('stages', kept)).toBe(before.keptStages);
    expect([await inventory(gone), await inventory(kept)]).toEqual([0, 2]);
    expect(await blobs(out, 'pts.gpkg.parts/')).toEqual(['pts.gpkg.parts/0000000000000000/part-00001.gpkg']);
    // Sources and other blobs untouched.
    expect((await blobs(old)).length).toBe(3);
    expect(await blobs(out)).toEqual(['pts.gpkg', 'pts.gpkg.parts/0000000000000000/part-00001.gpkg']);
    // Nothing older than a day now: a second purge finds nothing; a bad duration is a field error.
    expect((await api('POST', '/purge', { olderThan: '1d' })).body.jobs).toBe(0);
    const bad = await api('POST', '/purge', { olderThan: 'last week' });
    expect([bad.status, bad.body.issues[0].path]).toEqual([400, 'olderThan']);

    // Delete one job by id (admin): gone with its rows; a running job cannot be deleted.
    const del = await api('DELETE', `/jobs/${listNew.id}`);
    expect(del.status).toBe(200);
    expect(del.body).toMatchObject({ deleted: listNew.id, inventory_rows: 2 });
    expect(await count('tasks', [listNew.id])).toBe(0);
    expect((await api('GET', `/jobs/${listNew.id}`)).status).toBe(404);
  }, 120_000);

  it("a worker's periodic purge removes jobs past CM_RETENTION_DAYS and keeps the others", async () => {
    const past = await submit('hello_world', { n: 1, message: `periodic old ${tag}` });
    const fresh = await submit('hello_world', { n: 1, message: `periodic new ${tag}` });
    await q(`UPDATE "${schema}".jobs SET completed_at = now() - interval '31 days' WHERE id = $1`, [past.id]);
    expect(startRetention(app.machine, { CM_RETENTION_DAYS: 0, CM_PURGE_INTERVAL_MINUTES: 60 })).toBeNull();
    const retention = startRetention(app.machine, { CM_RETENTION_DAYS: 30, CM_PURGE_INTERVAL_MINUTES: 60 }, 10)!;
    try {
      for (let i = 0; i < 100 && (await app.machine.getJob(past.id)); i++) await new Promise((r) => setTimeout(r, 50));
      expect(await app.machine.getJob(past.id)).toBeNull();
      expect((await app.machine.getJob(fresh.id))?.status).toBe('completed');
    } finally {
      await retention.stop();
    }
  }, 60_000);

  it("process_raster's hook deletes the job's temporary windows and nothing else", async () => {
    const tmp = 'cm-tmp'; // CM_RASTER_TMP_CONTAINER's default
    await storage.ensureContainer(tmp);
    const id = randomBytes(32).toString('hex');
    const other = randomBytes(32).toString('hex');
    for (const w of ['w0-0.tif', 'w0-1.tif']) await storage.uploadData(tmp, `process_raster/${id}/${w}`, 'window');
    await storage.uploadData(tmp, `process_raster/${other}/w0-0.tif`, 'window of another job');
    const job = { id, type: 'process_raster', status: 'failed' as const, parameters: {} };
    expect(await PURGE_HOOKS['process_raster']!([job], { machine: app.machine })).toEqual({ blobs: 2 });
    expect(await blobs(tmp, `process_raster/${id}/`)).toEqual([]);
    expect(await blobs(tmp, `process_raster/${other}/`)).toEqual([`process_raster/${other}/w0-0.tif`]);
    await storage.delete(tmp, `process_raster/${other}/w0-0.tif`);
  });

  it('a re-run after the blob was replaced reads the new content; the first run stays in runs', async () => {
    const c = `ret-rr-${tag}`;
    await storage.ensureContainer(c);
    try {
      await storage.uploadData(c, 'data.bin', Buffer.alloc(100));
      const first = await submit('summarize_container', { container_name: c });
      expect(first.status).toBe('completed');
      const size = (job: any) => JSON.stringify(job.result).match(/"total_size_bytes":(\d+)/)?.[1];
      expect(size(first)).toBe('100');
      // An unknown job: 404.
      expect((await api('POST', `/jobs/${'e'.repeat(64)}/rerun`)).status).toBe(404);

      await storage.uploadData(c, 'data.bin', Buffer.alloc(250));
      const rerun = await api('POST', `/jobs/${first.id}/rerun`);
      expect(rerun.status).toBe(200);
      expect(rerun.body).toMatchObject({ id: first.id, run: 2, status: 'queued' });
      const second = await settle(first.id);
      expect(second.status).toBe('completed');
      expect(size(second)).toBe('250');

      const got = (await api('GET', `/jobs/${first.id}`)).body;
      expect(got.run).toBe(2);
      expect(got.runs.map((r: any) => [r.run, r.status, r.current])).toEqual([
        [1, 'completed', false],
        [2, 'completed', true],
      ]);
      expect(size(got.runs[0])).toBe('100');
      expect(got.runs[0].tasks).toBeGreaterThan(0);
      const kinds = async (run: number) =>
        (await api('GET', `/jobs/${first.id}/events?run=${run}`)).body.map((e: any) => e.kind);
      const [one, two] = [await kinds(1), await kinds(2)];
      expect(one[0]).toBe('job_submitted');
      expect(one.filter((k: string) => k === 'job_completed')).toHaveLength(1);
      expect(two[0]).toBe('job_rerun');
      expect(two.filter((k: string) => k === 'job_completed')).toHaveLength(1);
      expect(two).toContain('actor'); // who re-ran it
      expect(one).not.toContain('job_rerun');
    } finally {
      await storage.deleteContainer(c).catch(() => false);
    }
  }, 120_000);
});
