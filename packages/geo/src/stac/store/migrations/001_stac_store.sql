-- STAC store. {{schema}} is replaced with the quoted schema name.
CREATE EXTENSION IF NOT EXISTS postgis;

CREATE TABLE {{schema}}.collections (
  id         text PRIMARY KEY,
  content    jsonb NOT NULL,
  created_at timestamptz NOT NULL DEFAULT now(),
  updated_at timestamptz NOT NULL DEFAULT now()
);

-- One row per item. `content` is the item as validated, without its links (the API builds
-- them from the request's host). Search columns are extracted from it on write.
CREATE TABLE {{schema}}.items (
  collection     text NOT NULL REFERENCES {{schema}}.collections (id) ON DELETE CASCADE,
  id             text NOT NULL,
  geometry       geometry(Geometry, 4326),
  -- For an instant both bounds equal `datetime`; for a range they are start/end_datetime.
  start_datetime timestamptz NOT NULL,
  end_datetime   timestamptz NOT NULL,
  content        jsonb NOT NULL,
  created_at     timestamptz NOT NULL DEFAULT now(),
  updated_at     timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (collection, id)
);
CREATE INDEX items_geometry_idx ON {{schema}}.items USING gist (geometry);
CREATE INDEX items_datetime_idx ON {{schema}}.items (start_datetime, end_datetime);
CREATE INDEX items_end_datetime_idx ON {{schema}}.items (end_datetime);
CREATE INDEX items_id_idx ON {{schema}}.items (id);
