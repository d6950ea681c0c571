#!/usr/bin/env bash
# make db-restore FILE=...: puts a dump from make db-backup back, replacing the objects it
# holds (tables, their rows, Alembic's version), in one transaction: a restore that fails
# changes nothing.
set -o errexit -o pipefail -o nounset

compose=${COMPOSE:-docker compose}
file=${FILE:-}

if [ -z "$file" ] || [ ! -s "$file" ]; then
  echo "db-restore: name a dump made by make db-backup: make db-restore FILE=backups/db-....dump" >&2
  exit 2
fi
# shellcheck disable=SC2016  # expanded by the container's shell, from its own environment
$compose exec -T db sh -c 'exec pg_restore --username="$POSTGRES_USER" --dbname="$POSTGRES_DB" --clean --if-exists --no-owner --single-transaction --exit-on-error' <"$file"
echo "db-restore: restored $file"
