-- Re-runs (jobs.rerun): a settled job runs again with the same id and parameters. jobs.run is
-- the number of the current run; each earlier run is kept in job_runs (its status, result,
-- error, times and stage counters), and every event is stamped with the run it belongs to, so
-- the timelines of the runs stay apart. The stamp comes from the job row (a trigger), so no
-- writer of events needs to know about runs.
ALTER TABLE {{schema}}.jobs ADD COLUMN run int NOT NULL DEFAULT 1;
-- When the current run was queued (NULL: the first run, queued at created_at).
ALTER TABLE {{schema}}.jobs ADD COLUMN run_queued_at timestamptz;
ALTER TABLE {{schema}}.job_events ADD COLUMN run int NOT NULL DEFAULT 1;

CREATE TABLE {{schema}}.job_runs (
  job_id         text NOT NULL REFERENCES {{schema}}.jobs (id) ON DELETE CASCADE,
  run            int NOT NULL,
  status         text NOT NULL,
  plugin_version text NOT NULL,
  result         jsonb,
  error          jsonb,
  stages         jsonb NOT NULL DEFAULT '[]',
  tasks          int NOT NULL DEFAULT 0,
  retries        int NOT NULL DEFAULT 0,
  queued_at      timestamptz NOT NULL,
  started_at     timestamptz,
  completed_at   timestamptz,
  PRIMARY KEY (job_id, run)
);

CREATE FUNCTION {{schema}}.stamp_event_run() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  NEW.run := COALESCE((SELECT j.run FROM {{schema}}.jobs j WHERE j.id = NEW.job_id), 1);
  RETURN NEW;
END
$$;
CREATE TRIGGER job_events_run BEFORE INSERT ON {{schema}}.job_events
  FOR EACH ROW EXECUTE FUNCTION {{schema}}.stamp_event_run();

-- The purge selects settled jobs by the time they settled.
CREATE INDEX jobs_completed_idx ON {{schema}}.jobs (completed_at) WHERE completed_at IS NOT NULL;
