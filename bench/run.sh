#!/usr/bin/env bash
# Builds the stack's and the benchmark's images, runs a plan (quick, full, tuning or growth) and always
# removes what it started. Results: bench/results/latest/ (report.md, results.json, *.png).
set -o errexit -o pipefail -o nounset
cd "$(dirname "$0")/.."

plan=${1:-quick}
bench=(docker compose --file bench/compose.yaml)
# The load generator builds on the web image's base: the tag its Dockerfile's ARG names.
PYTHON_IMAGE=${PYTHON_IMAGE:-$(scripts/dockerfile-arg.sh services/web/Dockerfile PYTHON_IMAGE)}
export PYTHON_IMAGE

scratch=
cleanup() {
  docker ps --all --quiet --filter label=flask-stack.bench | xargs --no-run-if-empty docker rm --force --volumes >/dev/null
  # With the scratch volumes the images declare (pgbouncer's is its base's /var/lib/postgresql).
  "${bench[@]}" --profile run --profile build down --remove-orphans --volumes >/dev/null 2>&1 || true
  # The scale timing's own stack (bench/scale_timing.py), should it have been stopped midway.
  docker compose -p flask-stack-bench-scale -f compose.yaml down --volumes --timeout 40 >/dev/null 2>&1 || true
  if [[ -n $scratch ]]; then
    rm -rf "$scratch"
  fi
}
trap cleanup EXIT

# The benchmark's database password: a file, as the stack's (scripts/db-password.sh writes it),
# in a scratch folder of this run's, mounted into Postgres, PgBouncer and every server under
# test at /run/secrets/db_password (bench/compose.yaml), never in an environment. The database
# lives on a tmpfs, so each run makes its own with a new password.
scratch=$(mktemp -d "${TMPDIR:-/tmp}/flask-stack-bench.XXXXXX")
export BENCH_DB_PASSWORD_FILE=$scratch/db_password
if ! written=$(scripts/db-password.sh "$BENCH_DB_PASSWORD_FILE" 2>&1); then
  echo "$written" >&2
  exit 1
fi

# The stack's images first: the benchmark's servers and nginx are built on top of them.
docker compose build web nginx
"${bench[@]}" --profile run --profile build build
mkdir -p bench/results/latest
# How cost grows: the scale timing drives the stack's Makefile from the host, then the load
# generator measures the rest and writes growth.md with both (the full run does it last).
growth() {
  python3 bench/scale_timing.py bench/results/latest/scale.json
  "${bench[@]}" run --rm loadgen --plan growth
}
if [[ $plan == growth ]]; then
  growth
  exit 0
fi
# BENCH_VARIANTS (tuning only): words naming the variants to run beside the default.
read -r -a variants <<<"${BENCH_VARIANTS:-}"
"${bench[@]}" run --rm loadgen --plan "$plan" ${BENCH_DURATION:+--duration "$BENCH_DURATION"} \
  ${variants[@]:+--variants "${variants[@]}"}
if [[ $plan == full ]]; then
  growth
fi
