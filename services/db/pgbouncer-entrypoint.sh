#!/usr/bin/env bash
# PgBouncer's entrypoint: writes pgbouncer.ini and its auth file into PGBOUNCER_CONFIG_DIR
# (a tmpfs under a read-only root filesystem) from the environment and the database password
# file, then runs pgbouncer as the container's first process. Arguments starting with "-" are
# pgbouncer's options (`command: ["-v"]` logs more); other arguments are a command to run
# instead, after the files are written.
# Every setting's default is written here, once.
set -o errexit -o nounset -o pipefail

log() { printf 'pgbouncer-entrypoint: %s\n' "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

whole_number() {
  case "$2" in
    '' | *[!0-9]*) die "$1=$2 is not a whole number" ;;
  esac
}

# The role the app logs in as, the db service's POSTGRES_USER; also pgbouncer's admin.
db_user=${PGBOUNCER_DB_USER:-app}
# A file, as Compose and Swarm mount secrets: the password is never an environment variable.
password_file=${PGBOUNCER_PASSWORD_FILE:-/run/secrets/db_password}
db_host=${PGBOUNCER_DB_HOST:-db}
db_port=${PGBOUNCER_DB_PORT:-5432}
# Client connections: every web worker's pool in every replica. Each costs pgbouncer a file
# descriptor and a few kB, not a Postgres backend, so the bound can be generous.
max_client_conn=${PGBOUNCER_MAX_CLIENT_CONN:-2000}
# Server connections to Postgres from all replicas together: far under Postgres's default
# max_connections (100), leaving room for migrations, psql and a second pgbouncer.
pool_size=${PGBOUNCER_POOL_SIZE:-20}
# Seconds a client may wait for a server connection before it is disconnected with an error
# (the app answers 503): a saturated database sheds load instead of queueing it.
query_wait_timeout=${PGBOUNCER_QUERY_WAIT_TIMEOUT:-5}
# Writable at run time (a tmpfs in the compose files); nothing else is written.
config_dir=${PGBOUNCER_CONFIG_DIR:-/tmp/pgbouncer}

whole_number PGBOUNCER_DB_PORT "$db_port"
whole_number PGBOUNCER_MAX_CLIENT_CONN "$max_client_conn"
whole_number PGBOUNCER_POOL_SIZE "$pool_size"
whole_number PGBOUNCER_QUERY_WAIT_TIMEOUT "$query_wait_timeout"

[ -r "$password_file" ] \
  || die "cannot read the database password from $password_file: mount the db_password secret" \
    "there, or point PGBOUNCER_PASSWORD_FILE at it"
# Trailing newlines dropped, as the postgres image reads POSTGRES_PASSWORD_FILE.
password=$(<"$password_file")
[ -n "$password" ] || die "the database password file $password_file is empty"
case "$password" in
  *$'\n'*) die "the database password in $password_file spans lines: initdb reads one line" ;;
esac

# pgbouncer needs a file descriptor per client and per server connection. It does not raise
# its own soft limit, so take the hard one; below that, raise the container's nofile limit.
fds_needed=$((max_client_conn + pool_size + 100))
fd_limit=$(ulimit -Hn)
ulimit -Sn "$fd_limit"
if [ "$fd_limit" != unlimited ] && [ "$fd_limit" -lt "$fds_needed" ]; then
  log "WARNING: nofile limit $fd_limit is under the $fds_needed file descriptors" \
    "PGBOUNCER_MAX_CLIENT_CONN=$max_client_conn may need: raise the container's nofile ulimit"
fi

umask 077
mkdir -p "$config_dir" || die "cannot create $config_dir: it must be writable (a tmpfs)"
# One line per user, each field in double quotes, a double quote inside doubled. A plain
# password (not a SCRAM secret) lets pgbouncer answer Postgres's SCRAM challenge itself.
printf '"%s" "%s"\n' "${db_user//\"/\"\"}" "${password//\"/\"\"}" >"$config_dir/userlist.txt"
unset password

cat >"$config_dir/pgbouncer.ini" <<EOF
; Written by pgbouncer-entrypoint at start; change the environment, not this file.
[databases]
; Whatever database a client names, on the db service, as the client's own user.
* = host=${db_host} port=${db_port}

[pgbouncer]
listen_addr = 0.0.0.0
listen_port = 6432
; TCP only: the clients are other containers.
unix_socket_dir =
auth_type = scram-sha-256
auth_file = ${config_dir}/userlist.txt
; The app's own user reads SHOW POOLS / SHOW STATS in the "pgbouncer" admin database.
admin_users = ${db_user}
stats_users = ${db_user}

; A server connection serves one transaction, then the next client: a web worker's idle
; pooled connection holds no Postgres backend.
pool_mode = transaction
max_client_conn = ${max_client_conn}
; The same bound per database/user pair and per database: Postgres sees at most this many.
default_pool_size = ${pool_size}
max_db_connections = ${pool_size}
; No extra connections behind the bound: a wait past query_wait_timeout is an error instead.
reserve_pool_size = 0
query_wait_timeout = ${query_wait_timeout}
; A restarted db is reconnected to within seconds, not after the defaults (15 s each).
server_connect_timeout = 3
server_login_retry = 1
; pgbouncer's own DNS cache, kept short (Docker's DNS is local and cheap). Below it, c-ares
; keeps an answer as long as its TTL (Docker's: 600 s): a db container re-created with a new
; address is reached after that, or at once after pgbouncer restarts.
dns_max_ttl = 1
dns_nxdomain_ttl = 1
; psycopg prepares a statement after it ran 5 times on a connection; pgbouncer then prepares
; it again on whichever server connection the transaction gets (psycopg >= 3.2, libpq >= 17).
max_prepared_statements = 200
; Sent by some drivers (JDBC) at login; pgbouncer cannot pass it per transaction.
ignore_startup_parameters = extra_float_digits

; To stderr, for docker logs: no log file, no syslog.
logfile =
syslog = 0
EOF

case "${1:-}" in
  '' | -*) exec pgbouncer "$@" "$config_dir/pgbouncer.ini" ;;
  *) exec "$@" ;;
esac
