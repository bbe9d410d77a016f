# Two commands do everything on a fresh Debian machine (each bootstraps idempotently first):
#   make start   start CoreMachine (PostgreSQL+PostGIS, Azurite, API on 127.0.0.1:3000, workers)
#   make test    run every package's tests through turbo; ends with "N passed, N failed"
SHELL := /bin/bash
.PHONY: start test bootstrap typecheck bench-orchestration

bootstrap:
	@bash scripts/bootstrap.sh

# The server connects as the application role scripts/bootstrap.sh creates (no superuser, password
# authentication), unless DATABASE_URL says otherwise.
start: bootstrap
	@source scripts/env.sh && export DATABASE_URL="$${DATABASE_URL:-postgres://$${CM_DATABASE_ROLE:-coremachine}:$${CM_DATABASE_PASSWORD:-coremachine}@127.0.0.1:5432/$${CM_DATABASE_NAME:-coremachine}}" && pnpm --silent --filter @coremachine/dashboard build && cd apps/server && exec node --import tsx src/main.ts

test: bootstrap
	@source scripts/env.sh && node scripts/test.mjs

typecheck: bootstrap
	@source scripts/env.sh && turbo run typecheck --concurrency=2

bench-orchestration: bootstrap
	@source scripts/env.sh && cd bench && node --import tsx orchestration/run.ts
