/**
 * Profile (not a test): where one ingest_vector load task spends its time, on a generated
 * polygon GeoPackage read through /vsiaz/ (Azurite) and from the local file: source open, the
 * GDAL append straight into a staging table, and the whole loadChunk, chunk by chunk and with
 * two chunks at once (as a worker runs them).
 *
 *   source scripts/env.sh && cd bench && node --import tsx ingest/profile-load.ts <file.gpkg> [chunk-size]
 */
import { randomBytes } from 'node:crypto';
import { execFileSync } from 'node:child_process';
import pg from 'pg';
import { configureGdal } from '@coremachine/geo';
import {
  columnsOf,
  flatType,
  gdalPgConnection,
  openVectorLayer,
  planChunks,
  planGeometry,
} from '@coremachine/geo/vector';
import { createStorage, ensureAzurite, gdalConfigFor, storageConfigFromEnv, vsiazPath } from '@coremachine/storage';
import { DATABASE_URL } from '@coremachine/test-kit';
import { loadChunk } from '../../packages/job-ingest-vector/src/load-chunk.ts';
import { createStagingTable } from '../../packages/job-ingest-vector/src/tables.ts';

const file = process.argv[2]!;
const chunkSize = Number(process.argv[3] ?? 50_000);
const azurite = await ensureAzurite();
const storage = createStorage(storageConfigFromEnv());
configureGdal({ options: gdalConfigFor(storage.config) });
const container = `prof-${randomBytes(3).toString('hex')}`;
await storage.ensureContainer(container);
await storage.uploadFile(container, 'src.gpkg', file);
const pool = new pg.Pool({ connectionString: DATABASE_URL, max: 8 });
const schema = `prof_${randomBytes(3).toString('hex')}`;
await pool.query(`create schema ${schema}`);
const ms = (t: number) => `${(performance.now() - t).toFixed(0)} ms`;
try {
  for (const [label, path] of [
    ['local', file],
    ['/vsiaz/', vsiazPath(container, 'src.gpkg')],
  ] as const) {
    for (const parallel of [1, 2]) {
      let t = performance.now();
      const srcs = await Promise.all(Array.from({ length: parallel }, () => openVectorLayer(path, { format: 'gpkg' })));
      const open = ms(t);
      const src = srcs[0]!;
      const columns = columnsOf(src.layer);
      const geometry = planGeometry([flatType(src.layer.geomType)], false);
      const plan = planChunks(src.dataset, src.layer, src.driver, chunkSize);
      const staging = { schema, table: `s_${parallel}_${label === 'local' ? 'l' : 'b'}` };
      await createStagingTable(pool, staging, columns, geometry);
      const opts = { staging, columns, geometry, pg: gdalPgConnection(DATABASE_URL), checkLonLatRange: false };
      t = performance.now();
      const ranges = plan.ranges.slice(0, parallel * Math.floor(plan.ranges.length / parallel));
      for (let i = 0; i < ranges.length; i += parallel) {
        await Promise.all(ranges.slice(i, i + parallel).map((r, k) => loadChunk(pool, srcs[k]!, r, opts)));
      }
      const n = (await pool.query(`select count(*)::int n from ${schema}.${staging.table}`)).rows[0].n;
      console.log(
        `${label.padEnd(8)} ${parallel} at once: open ${open}, load ${ranges.length} chunks ${ms(t)} (${n} rows)`,
      );
      for (const s of srcs) s.close();
    }
    // The same SQL with the ogr2ogr CLI (one process, its own GDAL settings).
    for (const sql of [
      'SELECT fid + 0 AS cm_key, id, name, value, geom FROM polygons WHERE fid >= 1 AND fid < 50001',
      null,
    ]) {
      const t = performance.now();
      execFileSync(
        'ogr2ogr',
        [
          '-f',
          'PostgreSQL',
          'PG:host=127.0.0.1 dbname=coremachine user=postgres',
          path,
          '-nln',
          `${schema}.cli_${randomBytes(2).toString('hex')}`,
          '-lco',
          'SPATIAL_INDEX=NONE',
          '--config',
          'PG_USE_COPY',
          'YES',
          ...(sql ? ['-sql', sql] : ['-where', 'fid >= 1 AND fid < 50001']),
        ],
        { env: { ...process.env, ...gdalConfigFor(storage.config) } },
      );
      console.log(`${label.padEnd(8)} ogr2ogr CLI ${sql ? '-sql' : '-where'} 50,000 rows: ${ms(t)}`);
    }
  }
} finally {
  await pool.query(`drop schema ${schema} cascade`);
  await pool.end();
  await storage.deleteContainer(container).catch(() => {});
  await azurite.stop();
}
