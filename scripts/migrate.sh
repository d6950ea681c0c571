#!/usr/bin/env bash
# Runs the database migrations once (make migrate; scripts/rollout.sh before replacing any
# replica): `alembic upgrade head` in a one-off container of the web image, against Postgres
# directly, under the advisory lock migrations/env.py takes, so runs started together apply
# each migration once. Exits non-zero, with Alembic's reason, when a migration fails.
set -o errexit -o pipefail -o nounset

compose=${COMPOSE:-docker compose}

# Read whole first: `grep -q` stops reading at its match, and compose, writing on into the
# closed pipe, would fail the pipeline (pipefail), passing for "no db service".
services=$($compose config --services)
if ! grep -qx db <<<"$services"; then
  echo "migrate: no db service in the compose files (compose.db.yaml absent): nothing to migrate"
  exit 0
fi
# The image holds the migrations: build it, so a migration just written is one that runs.
$compose build web
# The database must be up: a migration is a step of a running stack's release.
$compose up --detach --wait --no-recreate db
echo "migrate: alembic upgrade head, in a one-off container of the web image"
# Postgres itself (db:5432), not PgBouncer: the lock is held by a session, which transaction
# pooling would not keep. --no-deps: the replicas keep serving, untouched.
$compose run --rm --no-deps --env APP_DB_HOST=db --env APP_DB_PORT=5432 web alembic upgrade head
