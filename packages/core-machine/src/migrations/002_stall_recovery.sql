-- When a queued task becomes due (now, or after its retry delay): lets the stall sweep find
-- queued tasks whose wake-up message was lost and send a new one.
ALTER TABLE {{schema}}.tasks ADD COLUMN due_at timestamptz NOT NULL DEFAULT now();
CREATE INDEX tasks_queued_due_idx ON {{schema}}.tasks (due_at) WHERE status = 'queued';
