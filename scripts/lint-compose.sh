#!/usr/bin/env bash
# Security lint of the compose files with compose-lint (part of `make lint`), in the two
# shapes the stack runs in:
#   compose.yaml + compose.db.yaml + compose.override.yaml  `make up`  policy: tools/lint/compose-lint.dev.yml
#   compose.yaml + compose.db.yaml + compose.prod.yaml   `make prod-up`  policy: tools/lint/compose-lint.prod.yml
#   ... + compose.tls.yaml             `make prod-up TLS=on`, the same policy
#   ... + compose.acme.yaml            `make prod-up TLS=acme`, the same policy
# compose-lint merges an overlay only when a .env beside the files selects it with
# COMPOSE_FILE, so both runs read copies in a scratch folder: the production run with
# such a .env, and neither with the developer's own .env.
# Any finding, whatever its severity, fails; each exception is in the policy files.
set -o errexit -o pipefail -o nounset
cd "$(dirname "$0")/.."
root=$PWD
compose_lint=${COMPOSE_LINT:-$root/.venv-lint/bin/compose-lint}

scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT

# The production policy names the acme services, which exist only with compose.acme.yaml;
# --strict-config refuses a name no merged file has, so the runs without it leave them out.
grep -v '^      acme' tools/lint/compose-lint.prod.yml >"$scratch/compose-lint.prod-without-acme.yml"

check() {
  printf 'lint-compose: %s\n' "$2"
  local policy="$root/tools/lint/$1"
  [ -f "$policy" ] || policy="$scratch/$1"
  (cd "$scratch" && "$compose_lint" check --fail-on low --strict-config --skip-suppressed \
    --config "$policy" compose.yaml)
}

status=0
cp compose.yaml compose.db.yaml compose.override.yaml "$scratch/"
printf 'COMPOSE_FILE=compose.yaml:compose.db.yaml:compose.override.yaml\n' >"$scratch/.env"
check compose-lint.dev.yml "compose.yaml + compose.db.yaml + compose.override.yaml, as make up runs them" || status=$?
cp compose.prod.yaml "$scratch/"
printf 'COMPOSE_FILE=compose.yaml:compose.db.yaml:compose.prod.yaml\n' >"$scratch/.env"
check compose-lint.prod-without-acme.yml "compose.yaml + compose.db.yaml + compose.prod.yaml, as make prod-up runs them" || status=$?
cp compose.tls.yaml "$scratch/"
printf 'COMPOSE_FILE=compose.yaml:compose.db.yaml:compose.prod.yaml:compose.tls.yaml\n' >"$scratch/.env"
check compose-lint.prod-without-acme.yml "the same + compose.tls.yaml, as make prod-up TLS=on runs them" || status=$?
cp compose.acme.yaml "$scratch/"
printf 'COMPOSE_FILE=compose.yaml:compose.db.yaml:compose.prod.yaml:compose.tls.yaml:compose.acme.yaml\nACME_DOMAINS=shop.example.com\n' >"$scratch/.env"
check compose-lint.prod.yml "the same + compose.acme.yaml, as make prod-up TLS=acme runs them" || status=$?
exit "$status"
