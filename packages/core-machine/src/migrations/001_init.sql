-- CoreMachine ledger. {{schema}} is replaced with the quoted schema name.
CREATE TABLE {{schema}}.jobs (
  id             text PRIMARY KEY CHECK (id ~ '^[0-9a-f]{64}$'),
  type           text NOT NULL,
  plugin_version text NOT NULL,
  parameters     jsonb NOT NULL,
  status         text NOT NULL DEFAULT 'queued'
                 CHECK (status IN ('queued','processing','completed','completed_with_errors','failed','cancelled')),
  current_stage  int NOT NULL DEFAULT 0,
  total_stages   int NOT NULL,
  result         jsonb,
  error          jsonb,
  created_at     timestamptz NOT NULL DEFAULT now(),
  updated_at     timestamptz NOT NULL DEFAULT now(),
  started_at     timestamptz,
  completed_at   timestamptz
);
CREATE INDEX jobs_status_idx ON {{schema}}.jobs (status, created_at DESC);
CREATE INDEX jobs_type_idx ON {{schema}}.jobs (type, created_at DESC);
CREATE INDEX jobs_created_idx ON {{schema}}.jobs (created_at DESC, id DESC);

CREATE TABLE {{schema}}.stages (
  job_id       text NOT NULL REFERENCES {{schema}}.jobs (id) ON DELETE CASCADE,
  stage_index  int NOT NULL,
  name         text NOT NULL,
  status       text NOT NULL DEFAULT 'processing'
               CHECK (status IN ('processing','completed','failed','cancelled')),
  total        int NOT NULL,
  completed    int NOT NULL DEFAULT 0,
  failed       int NOT NULL DEFAULT 0,
  started_at   timestamptz NOT NULL DEFAULT now(),
  completed_at timestamptz,
  PRIMARY KEY (job_id, stage_index)
);

CREATE TABLE {{schema}}.tasks (
  id           text PRIMARY KEY,
  job_id       text NOT NULL REFERENCES {{schema}}.jobs (id) ON DELETE CASCADE,
  stage_index  int NOT NULL,
  key          text NOT NULL,
  input        jsonb NOT NULL,
  status       text NOT NULL DEFAULT 'queued'
               CHECK (status IN ('queued','processing','completed','failed','cancelled')),
  attempts     int NOT NULL DEFAULT 0,
  max_attempts int NOT NULL,
  lease_seconds int NOT NULL,
  lease_token  uuid,
  heartbeat_at timestamptz,
  progress     real,
  progress_note text,
  output       jsonb,
  error        jsonb,
  created_at   timestamptz NOT NULL DEFAULT now(),
  started_at   timestamptz,
  completed_at timestamptz,
  UNIQUE (job_id, stage_index, key)
);
CREATE INDEX tasks_job_stage_status_idx ON {{schema}}.tasks (job_id, stage_index, status);
CREATE INDEX tasks_processing_heartbeat_idx ON {{schema}}.tasks (heartbeat_at) WHERE status = 'processing';

CREATE TABLE {{schema}}.job_events (
  id         bigserial PRIMARY KEY,
  job_id     text NOT NULL REFERENCES {{schema}}.jobs (id) ON DELETE CASCADE,
  at         timestamptz NOT NULL DEFAULT clock_timestamp(),
  kind       text NOT NULL,
  stage_index int,
  task_id    text,
  message    text,
  data       jsonb
);
CREATE INDEX job_events_job_idx ON {{schema}}.job_events (job_id, id);
