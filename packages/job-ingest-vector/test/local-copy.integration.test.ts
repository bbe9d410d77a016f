/**
 * Sources read from the worker's local copy: one download per blob version shared by the tasks,
 * a replaced blob never read stale, the in-place /vsiaz/ path giving the same table, and a load
 * task refusing a blob replaced after prepare planned on it.
 */
import { randomBytes } from 'node:crypto';
import { execFileSync } from 'node:child_process';
import { readFileSync, existsSync, writeFileSync } from 'node:fs';
import pg from 'pg';
import { createStorage, storageConfigFromEnv } from '@coremachine/storage';
import { createTestMachine, DATABASE_URL, type TestMachine } from '@coremachine/test-kit';
import type { Services } from '@coremachine/core-machine';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import ingestVector from '../src/index.ts';
import { acquireLocalCopy, localCopies } from '../src/local-copy.ts';
import { openSource } from '../src/source.ts';
import { makeFixtures, type Fixtures } from './fixtures.ts';

const storage = createStorage(storageConfigFromEnv());
const container = `vc-${randomBytes(4).toString('hex')}`;
const vschema = `vc_${randomBytes(4).toString('hex')}`;
let fx: Fixtures;
let pool: pg.Pool;
let local: TestMachine;
let inPlace: TestMachine;

async function etagOf(blob: string): Promise<string> {
  const stat = await storage.stat(container, blob);
  if (!stat.exists) throw new Error(`${blob} missing`);
  return stat.etag;
}

beforeAll(async () => {
  fx = makeFixtures();
  pool = new pg.Pool({ connectionString: DATABASE_URL, max: 2 });
  await storage.ensureContainer(container);
  local = await createTestMachine({ plugins: [ingestVector], services: { vector: { schemas: [vschema] } } });
  inPlace = await createTestMachine({
    plugins: [ingestVector],
    services: { vector: { schemas: [vschema], localCopyMaxBytes: 0 } },
  });
});

afterAll(async () => {
  await local?.close();
  await inPlace?.close();
  await pool?.query(`drop schema if exists "${vschema}" cascade`);
  await pool?.end();
  await storage.deleteContainer(container).catch(() => {});
  fx?.cleanup();
});

describe('ingest_vector: local copies of sources', () => {
  it('downloads a blob version once for concurrent readers; a replaced blob is a new copy; a stale version fails BLOB_CHANGED', async () => {
    await storage.uploadData(container, 'copies/a.geojson', '{"v":1}');
    const v1 = await etagOf('copies/a.geojson');
    const [c1, c2] = await Promise.all([
      acquireLocalCopy(storage, container, 'copies/a.geojson', v1),
      acquireLocalCopy(storage, container, 'copies/a.geojson', v1),
    ]);
    expect(c1.path).toBe(c2.path);
    expect(c1.path.endsWith('.geojson')).toBe(true);
    expect(readFileSync(c1.path, 'utf8')).toBe('{"v":1}');
    expect(localCopies()).toContain(c1.path);

    await storage.uploadData(container, 'copies/a.geojson', '{"v":22}');
    const v2 = await etagOf('copies/a.geojson');
    const c3 = await acquireLocalCopy(storage, container, 'copies/a.geojson', v2);
    expect(c3.path).not.toBe(c1.path);
    expect(readFileSync(c3.path, 'utf8')).toBe('{"v":22}');
    // The first version stays readable by its holders until they release it.
    expect(readFileSync(c1.path, 'utf8')).toBe('{"v":1}');
    for (const c of [c1, c2, c3]) c.release();

    await storage.uploadData(container, 'copies/b.geojson', 'one');
    const stale = await etagOf('copies/b.geojson');
    await storage.uploadData(container, 'copies/b.geojson', 'two');
    const kept = localCopies();
    const err = await acquireLocalCopy(storage, container, 'copies/b.geojson', stale).then(
      () => null,
      (e: unknown) => e,
    );
    expect(err).toMatchObject({ code: 'BLOB_CHANGED' });
    // A failed download is not kept: the cache holds what it held, all of it on disk.
    expect(localCopies()).toEqual(kept);
    expect(kept.every((p) => existsSync(p))).toBe(true);
  });

  it('the same GeoPackage ingested from a local copy and in place through /vsiaz/ gives identical tables', async () => {
    const rows = Array.from(
      { length: 3000 },
      (_, i) =>
        `${i},"Zoë ${i}","POLYGON ((${i % 60} ${Math.floor(i / 60)},${(i % 60) + 0.5} ${Math.floor(i / 60)},${(i % 60) + 0.5} ${Math.floor(i / 60) + 0.5},${i % 60} ${Math.floor(i / 60)}))"`,
    );
    writeFileSync(fx.path('copy.csv'), `id,name,wkt\n${rows.join('\n')}\n`);
    execFileSync('ogr2ogr', [
      '-f',
      'GPKG',
      fx.path('copy.gpkg'),
      fx.path('copy.csv'),
      '-oo',
      'GEOM_POSSIBLE_NAMES=wkt',
      '-oo',
      'KEEP_GEOM_COLUMNS=NO',
      '-oo',
      'AUTODETECT_TYPE=YES',
      '-nln',
      'copy',
      '-nlt',
      'MULTIPOLYGON',
      '-a_srs',
      'EPSG:4326',
    ]);
    await storage.uploadFile(container, 'copy.gpkg', fx.path('copy.gpkg'));
    const params = { container_name: container, blob_name: 'copy.gpkg', schema: vschema, chunk_size: 1000 };
    const [a, b] = await Promise.all([
      local.submitAndWait('ingest_vector', { ...params, table_name: 'from_copy' }, { timeoutMs: 90_000 }),
      inPlace.submitAndWait('ingest_vector', { ...params, table_name: 'in_place' }, { timeoutMs: 90_000 }),
    ]);
    expect([a.status, b.status, a.error, b.error]).toEqual(['completed', 'completed', null, null]);
    expect(a.result).toMatchObject({ chunks: 3, features_read: 3000, features_written: 3000 });
    const digest = async (table: string) =>
      (
        await pool.query(
          `select count(*)::int n, md5(string_agg(fid || ':' || name || ':' || encode(st_asbinary(geom), 'hex'), ',' order by fid)) h from "${vschema}"."${table}"`,
        )
      ).rows[0];
    const [ours, ref] = [await digest('from_copy'), await digest('in_place')];
    expect(ours.n).toBe(3000);
    expect(ours).toEqual(ref);
    // One copy of the GeoPackage served prepare and the 3 load tasks of the local machine; the
    // in-place machine made none.
    expect(localCopies().filter((p) => p.endsWith('.gpkg'))).toHaveLength(1);
  });

  it("a blob without an extension is copied under its format's (a zipped shapefile read through /vsizip/)", async () => {
    await storage.uploadFile(container, 'noext/parcels', fx.path('parcels.zip'));
    const job = await local.submitAndWait(
      'ingest_vector',
      {
        container_name: container,
        blob_name: 'noext/parcels',
        file_extension: 'zip',
        table_name: 'noext',
        schema: vschema,
      },
      { timeoutMs: 90_000 },
    );
    expect([job.status, job.error]).toEqual(['completed', null]);
    const { rows } = await pool.query(`select name_full from "${vschema}".noext order by fid`);
    expect(rows.map((r) => r.name_full)).toEqual(['Zürich', null, 'Ærøskøbing', 'São Paulo', 'bow\ttie "\\"']);
  });

  it('a load task on a blob replaced after prepare fails permanently with SOURCE_CHANGED', async () => {
    await storage.uploadData(container, 'changed.geojson', JSON.stringify({ type: 'FeatureCollection', features: [] }));
    const planned = await etagOf('changed.geojson');
    await storage.uploadData(
      container,
      'changed.geojson',
      JSON.stringify({
        type: 'FeatureCollection',
        features: [{ type: 'Feature', properties: {}, geometry: { type: 'Point', coordinates: [1, 2] } }],
      }),
    );
    const params = {
      container_name: container,
      blob_name: 'changed.geojson',
      table_name: 'changed',
      schema: vschema,
      chunk_size: 'auto',
      overwrite: false,
    } as const;
    const services = { storage, vector: { schemas: [vschema] } } as unknown as Services;
    const err = await openSource(params as never, services, undefined, { expectedEtag: planned }).then(
      () => null,
      (e: unknown) => e,
    );
    expect(err).toMatchObject({ code: 'SOURCE_CHANGED', permanent: true });
    expect((err as Error).message).toContain(`${container}/changed.geojson`);
    const src = await openSource(params as never, services, undefined, {
      expectedEtag: await etagOf('changed.geojson'),
    });
    try {
      expect(src.layer.features.count()).toBe(1);
    } finally {
      src.close();
    }
  });
});
