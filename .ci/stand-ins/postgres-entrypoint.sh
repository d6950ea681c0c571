#!/usr/bin/env bash
# Entrypoint of the postgres stand-in (CI only), our own, keeping the parts of the official
# image's entrypoint contract the stack relies on:
#   - a first argument starting with "-" is an option of postgres (the command becomes
#     "postgres <options>", so `command: ["-c", "key=value"]` works as with the real image);
#   - for postgres, started as root: make $PGDATA and the socket directory postgres's, then
#     run this script again as postgres;
#   - on an empty $PGDATA: initdb with POSTGRES_USER (default postgres) as the superuser, its
#     password from POSTGRES_PASSWORD_FILE or POSTGRES_PASSWORD (stored as scram-sha-256),
#     POSTGRES_INITDB_ARGS and POSTGRES_INITDB_WALDIR; trust on the local socket and
#     POSTGRES_HOST_AUTH_METHOD (default scram-sha-256) for every host; the database
#     POSTGRES_DB (default: the user's name); then /docker-entrypoint-initdb.d/*.sh, *.sql,
#     *.sql.gz|xz|zst, in name order, against a server listening on its unix socket only;
#   - then the command as this container's first process (postgres listens on every address:
#     the image's postgresql.conf.sample says listen_addresses = '*').
# Not reproduced: an arbitrary --user without a passwd entry (the official one uses nss_wrapper).
set -o errexit -o pipefail -o nounset

log() { printf 'postgres-entrypoint: %s\n' "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

# NAME from the environment, or from the file NAME_FILE names (its trailing newlines dropped);
# both set is a mistake. The value is exported for the re-run as postgres (the file may be
# readable by root only) and for the init scripts; the password is dropped before postgres runs.
value_or_file() {
  local name=$1 default=$2
  local file_name="${name}_FILE"
  local value=${!name:-} file=${!file_name:-}
  if [ -n "$value" ] && [ -n "$file" ]; then
    die "both $name and $file_name are set: set only one"
  fi
  if [ -n "$file" ]; then
    [ -r "$file" ] || die "$file_name=$file cannot be read: mount the file there"
    value=$(<"$file")
  fi
  export "$name=${value:-$default}"
  unset "$file_name"
}

# True when the postgres command only prints something (help, version, a setting) and exits.
only_prints() {
  local arg
  for arg in "$@"; do
    case "$arg" in
      -'?' | --help | --describe-config | -V | --version | -C) return 0 ;;
    esac
  done
  return 1
}

# psql for the initialisation: the local socket (trusted), stop at the first error.
init_psql() {
  psql --no-psqlrc --no-password --quiet --set ON_ERROR_STOP=1 --username "$POSTGRES_USER" "$@"
}

run_init_scripts() {
  local script
  for script in /docker-entrypoint-initdb.d/*; do
    [ -e "$script" ] || continue
    case "$script" in
      *.sh)
        if [ -x "$script" ]; then
          log "running $script"
          "$script"
        else
          log "sourcing $script"
          # Scripts written for the official image may read unset variables.
          set +o nounset
          # shellcheck disable=SC1090 # the user's scripts, known only at run time
          . "$script"
          set -o nounset
        fi
        ;;
      *.sql) log "running $script"; init_psql --dbname "$POSTGRES_DB" --file "$script" ;;
      *.sql.gz) log "running $script"; gzip -dc "$script" | init_psql --dbname "$POSTGRES_DB" ;;
      *.sql.xz) log "running $script"; xz -dc "$script" | init_psql --dbname "$POSTGRES_DB" ;;
      *.sql.zst) log "running $script"; zstd -dcq "$script" | init_psql --dbname "$POSTGRES_DB" ;;
      *) log "ignoring $script (not .sh, .sql, .sql.gz, .sql.xz or .sql.zst)" ;;
    esac
  done
}

initialise() {
  local auth=${POSTGRES_HOST_AUTH_METHOD:-scram-sha-256}
  local -a initdb_args=(--username="$POSTGRES_USER")
  if [ -z "$POSTGRES_PASSWORD" ] && [ "$auth" != trust ]; then
    die "the database is uninitialised and no superuser password is given: set" \
      "POSTGRES_PASSWORD_FILE (or POSTGRES_PASSWORD), or POSTGRES_HOST_AUTH_METHOD=trust"
  fi
  if [ -n "${POSTGRES_INITDB_WALDIR:-}" ]; then
    initdb_args+=(--waldir="$POSTGRES_INITDB_WALDIR")
  fi
  # POSTGRES_INITDB_ARGS is a list of options split on spaces, as with the official image.
  # shellcheck disable=SC2206
  initdb_args+=($POSTGRES_INITDB_ARGS)
  log "initialising a database cluster in $PGDATA for superuser $POSTGRES_USER"
  if [ -n "$POSTGRES_PASSWORD" ]; then
    # The password reaches initdb through a pipe, never a command line or a file on disk.
    initdb "${initdb_args[@]}" --pwfile=<(printf '%s\n' "$POSTGRES_PASSWORD")
  else
    initdb "${initdb_args[@]}"
  fi
  # initdb's own pg_hba.conf trusts the local socket (and loopback); every other host logs in.
  printf '\nhost all all all %s\n' "$auth" >>"$PGDATA/pg_hba.conf"

  # A server for the initialisation only: no TCP listener, so nothing outside this container
  # sees the database before it is ready.
  pg_ctl --pgdata="$PGDATA" --wait --silent \
    --options="-c listen_addresses='' -p ${PGPORT:-5432}" start
  init_psql --dbname postgres --set db="$POSTGRES_DB" <<'SQL'
SELECT format('CREATE DATABASE %I', :'db')
WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = :'db')
\gexec
SQL
  run_init_scripts
  pg_ctl --pgdata="$PGDATA" --mode=fast --wait --silent stop
  log "initialisation done"
}

case "${1:-}" in
  -*) set -- postgres "$@" ;;
esac

if [ "${1:-}" = postgres ] && ! only_prints "$@"; then
  value_or_file POSTGRES_USER postgres
  value_or_file POSTGRES_PASSWORD ''
  value_or_file POSTGRES_DB "$POSTGRES_USER"
  value_or_file POSTGRES_INITDB_ARGS ''

  if [ "$(id -u)" = 0 ]; then
    mkdir -p "$PGDATA"
    chmod 0700 "$PGDATA"
    find "$PGDATA" ! -user postgres -exec chown postgres:postgres {} +
    install --directory --owner postgres --group postgres --mode 3777 /var/run/postgresql
    exec setpriv --reuid=postgres --regid=postgres --init-groups "${BASH_SOURCE[0]}" "$@"
  fi

  if [ -s "$PGDATA/PG_VERSION" ]; then
    log "$PGDATA holds a database cluster already: no initialisation"
  else
    initialise
  fi
  unset POSTGRES_PASSWORD
fi

exec "$@"
