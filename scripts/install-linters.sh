#!/usr/bin/env bash
# Installs what `make lint` runs: Debian's shellcheck, and ruff, hadolint, compose-lint,
# zizmor and check-jsonschema at the exact versions and hashes of tools/lint/requirements.txt,
# in .venv-lint.
# Idempotent and silent when all is in place; the venv is rebuilt when the lock changes.
set -o errexit -o pipefail -o nounset
cd "$(dirname "$0")/.."

venv=.venv-lint
lock=tools/lint/requirements.txt

log() { printf 'install-linters: %s\n' "$*" >&2; }

if ! command -v shellcheck >/dev/null; then
  [ "$(id -u)" -eq 0 ] || { log "run as root, or: apt-get install shellcheck"; exit 1; }
  log "installing Debian's shellcheck"
  export DEBIAN_FRONTEND=noninteractive
  apt-get install -y -qq --no-install-recommends shellcheck >/dev/null 2>&1 \
    || { apt-get update -qq >/dev/null && apt-get install -y -qq --no-install-recommends shellcheck >/dev/null; }
fi

# The stamp holds the hash of the lock the venv was built from.
wanted=$(sha256sum "$lock" | cut -d' ' -f1)
if [ "$(cat "$venv/.installed" 2>/dev/null || true)" != "$wanted" ]; then
  log "installing ruff, hadolint, compose-lint, zizmor and check-jsonschema into $venv"
  rm -rf "$venv"
  python3 -m venv "$venv"
  # Wheels only: hadolint's comes with its binary inside, nothing is fetched while installing.
  "$venv/bin/pip" install --quiet --disable-pip-version-check --require-hashes --only-binary=:all: -r "$lock"
  printf '%s\n' "$wanted" >"$venv/.installed"
fi
