-- Gives the application role the schemas it uses that an earlier set-up created as another role
-- (the superuser, before the application had a role of its own): each schema, and every table,
-- view, sequence, function and type in it. Run by scripts/bootstrap.sh as the superuser, with
-- psql variables `role` and `schemas` (comma-separated). Schemas that do not exist are skipped.
SELECT set_config('cm.adopt_role', :'role', false), set_config('cm.adopt_schemas', :'schemas', false);
DO $adopt$
DECLARE
  app_role text := current_setting('cm.adopt_role');
  s text;
  r record;
BEGIN
  FOREACH s IN ARRAY string_to_array(current_setting('cm.adopt_schemas'), ',') LOOP
    CONTINUE WHEN NOT EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = s);
    EXECUTE format('ALTER SCHEMA %I OWNER TO %I', s, app_role);
    -- Tables (partitions included), views, materialized views, foreign tables; the sequences a
    -- column owns follow their table.
    FOR r IN
      SELECT c.relname, c.relkind FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
      WHERE n.nspname = s AND c.relkind IN ('r', 'p', 'v', 'm', 'f')
        AND pg_get_userbyid(c.relowner) <> app_role
    LOOP
      EXECUTE format(
        CASE r.relkind WHEN 'v' THEN 'ALTER VIEW %I.%I OWNER TO %I'
                       WHEN 'm' THEN 'ALTER MATERIALIZED VIEW %I.%I OWNER TO %I'
                       WHEN 'f' THEN 'ALTER FOREIGN TABLE %I.%I OWNER TO %I'
                       ELSE 'ALTER TABLE %I.%I OWNER TO %I' END,
        s, r.relname, app_role);
    END LOOP;
    FOR r IN
      SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
      WHERE n.nspname = s AND c.relkind = 'S' AND pg_get_userbyid(c.relowner) <> app_role
        AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.objid = c.oid AND d.deptype IN ('a', 'i'))
    LOOP
      EXECUTE format('ALTER SEQUENCE %I.%I OWNER TO %I', s, r.relname, app_role);
    END LOOP;
    FOR r IN
      SELECT p.oid::regprocedure AS fn, p.prokind FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
      WHERE n.nspname = s AND pg_get_userbyid(p.proowner) <> app_role
    LOOP
      EXECUTE format(CASE r.prokind WHEN 'p' THEN 'ALTER PROCEDURE %s OWNER TO %I' ELSE 'ALTER ROUTINE %s OWNER TO %I' END,
        r.fn, app_role);
    END LOOP;
    FOR r IN
      SELECT t.typname, t.typtype FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace
      WHERE n.nspname = s AND t.typtype IN ('e', 'd', 'c', 'r') AND pg_get_userbyid(t.typowner) <> app_role
        AND NOT (t.typtype = 'c' AND EXISTS (SELECT 1 FROM pg_class c WHERE c.oid = t.typrelid AND c.relkind <> 'c'))
        AND t.typname NOT LIKE '\_%'
    LOOP
      EXECUTE format(CASE r.typtype WHEN 'd' THEN 'ALTER DOMAIN %I.%I OWNER TO %I' ELSE 'ALTER TYPE %I.%I OWNER TO %I' END,
        s, r.typname, app_role);
    END LOOP;
  END LOOP;
END
$adopt$;
