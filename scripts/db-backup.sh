#!/usr/bin/env bash
# make db-backup [FILE=...]: a dump of the database (pg_dump's custom format, compressed),
# taken inside the db container while the stack serves; the default file is
# backups/db-<UTC time>.dump. Restore it with make db-restore FILE=...
set -o errexit -o pipefail -o nounset

compose=${COMPOSE:-docker compose}
file=${FILE:-backups/db-$(date -u +%Y%m%dT%H%M%SZ).dump}

mkdir -p "$(dirname "$file")"
tmp="$file.partial"
# Over the container's Unix socket as the database's owner; one consistent snapshot.
# shellcheck disable=SC2016  # expanded by the container's shell, from its own environment
$compose exec -T db sh -c 'exec pg_dump --username="$POSTGRES_USER" --dbname="$POSTGRES_DB" --format=custom' >"$tmp"
# Only a complete dump takes the name: a failed one never passes for a backup.
mv "$tmp" "$file"
echo "db-backup: wrote $file ($(wc -c <"$file") bytes)"
