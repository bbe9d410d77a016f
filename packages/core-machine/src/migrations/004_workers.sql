-- Live workers: each worker process heartbeats its row; /health and jobs.get read liveness from
-- here (not from the process that answers). tasks.worker_id names the worker holding a lease.
CREATE TABLE {{schema}}.workers (
  id           text PRIMARY KEY,
  host         text NOT NULL,
  pid          int NOT NULL,
  job_types    text[] NOT NULL,
  control      boolean NOT NULL,
  running      int NOT NULL DEFAULT 0,
  started_at   timestamptz NOT NULL DEFAULT now(),
  heartbeat_at timestamptz NOT NULL DEFAULT now(),
  stopping     boolean NOT NULL DEFAULT false
);
ALTER TABLE {{schema}}.tasks ADD COLUMN worker_id text;
