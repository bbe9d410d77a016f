/**
 * What job types leave outside the ledger, removed when their jobs are purged or deleted:
 * list_container_contents' inventory rows, export_vector's part blobs (left behind by a worker
 * that died between uploading a part and settling its task), process_raster's temporary windows
 * of the tiled path (its own sweep skips jobs the ledger no longer knows: they go here, before
 * the rows).
 */
import type { PurgeHook } from '@coremachine/core-machine';
import { outputBlob, parameters as exportParameters } from '@coremachine/job-export-vector';
import { INVENTORY_TABLE } from '@coremachine/job-list-container-contents';
import { deleteTmpPrefix, tiledConfig, tmpPrefix } from '@coremachine/job-process-raster';

/** The tiled path's windows of each job: `<job type>/<job id>/` in CM_RASTER_TMP_CONTAINER. */
const tmpWindows: PurgeHook = async (jobs, { machine }) => {
  const storage = machine.services.storage;
  if (!storage) return { blobs: 0 };
  const { tmpContainer } = tiledConfig();
  let blobs = 0;
  for (const job of jobs) blobs += await deleteTmpPrefix(storage, tmpContainer, tmpPrefix(job.type, job.id));
  return { blobs };
};

export const PURGE_HOOKS: Record<string, PurgeHook> = {
  list_container_contents: async (jobs, { machine }) => {
    const {
      rows: [exists],
    } = await machine.pool.query<{ t: string | null }>(`SELECT to_regclass($1)::text AS t`, [INVENTORY_TABLE]);
    if (!exists?.t) return { inventory_rows: 0 };
    const { rowCount } = await machine.pool.query(`DELETE FROM ${INVENTORY_TABLE} WHERE job_id = ANY($1)`, [
      jobs.map((j) => j.id),
    ]);
    return { inventory_rows: rowCount ?? 0 };
  },
  // The parts of an export live under `<output>.parts/<job id prefix>/`; the job deletes them when
  // it completes or fails, but a worker killed between uploading a part and settling its task
  // leaves one behind: whatever is under the prefix goes.
  export_vector: async (jobs, { machine }) => {
    const storage = machine.services.storage;
    if (!storage) return { blobs: 0 };
    let blobs = 0;
    for (const job of jobs) {
      const p = exportParameters.safeParse(job.parameters);
      if (!p.success) continue;
      const prefix = `${outputBlob(p.data)}.parts/${job.id.slice(0, 16)}/`;
      const names: string[] = [];
      for await (const b of storage.list(p.data.container_name, { prefix })) names.push(b.name);
      for (const name of names) if (await storage.delete(p.data.container_name, name)) blobs += 1;
    }
    return { blobs };
  },
  process_raster: tmpWindows,
  process_raster_collection: tmpWindows,
};
