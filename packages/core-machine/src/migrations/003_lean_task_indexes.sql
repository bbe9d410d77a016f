-- Every task row is written three times (insert, claim, settle); each index is paid on each
-- write. (job_id, stage_index, key) is already unique-indexed and serves every by-job, by-stage
-- lookup, so the status index adds cost without a query that needs it.
DROP INDEX IF EXISTS {{schema}}.tasks_job_stage_status_idx;
