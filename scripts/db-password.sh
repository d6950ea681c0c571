#!/usr/bin/env bash
# Writes the database password file Compose mounts as the db_password secret (compose.db.yaml),
# once: a random password the first time, the same file every time after. Usage:
# db-password.sh [file], default $DB_PASSWORD_FILE or secrets/db_password.
set -o errexit -o pipefail -o nounset
cd "$(dirname "$0")/.."

file=${1:-${DB_PASSWORD_FILE:-secrets/db_password}}
[ -s "$file" ] && exit 0
dir=$(dirname "$file")
# The folder is the owner's alone; the file in it must be readable by the containers' own
# users (Postgres's, PgBouncer's, web's), which Compose's file secrets mount it as it is.
mkdir -p "$dir"
chmod 700 "$dir"
umask 022
# 32 random bytes as hex: no character that a connection string or a shell would need escaped.
tmp=$(mktemp "$dir/.db_password.XXXXXX")
od -An -N32 -tx1 /dev/urandom | tr -d ' \n' >"$tmp"
chmod 644 "$tmp"
mv "$tmp" "$file"
echo "db-password: wrote a new random database password to $file (keep it; the database's data was made with it)" >&2
