/**
 * What job types leave outside the ledger, removed when their jobs are purged or deleted:
 * list_container_contents' inventory rows, export_vector's part blobs (left behind when a job
 * failed or was cancelled before its parts were assembled and deleted).
 */
import type { PurgeHook } from '@coremachine/core-machine';
import { INVENTORY_TABLE } from '@coremachine/job-list-container-contents';

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
  export_vector: async (jobs, { machine }) => {
    const storage = machine.services.storage;
    // A completed export deleted its parts itself.
    const open = jobs.filter((j) => j.status !== 'completed');
    if (!storage || !open.length) return { blobs: 0 };
    const { rows } = await machine.pool.query<{ job_id: string; part: string }>(
      `SELECT job_id, output->>'part' AS part FROM ${machine.t.tasks}
       WHERE job_id = ANY($1) AND status = 'completed' AND output ? 'part'`,
      [open.map((j) => j.id)],
    );
    const container = new Map(open.map((j) => [j.id, String(j.parameters['container_name'] ?? '')]));
    let blobs = 0;
    for (const r of rows) {
      const c = container.get(r.job_id);
      if (c && (await storage.delete(c, r.part))) blobs += 1;
    }
    return { blobs };
  },
};
