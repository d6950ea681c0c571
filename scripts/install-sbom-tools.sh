#!/usr/bin/env bash
# Installs what make push runs to describe and label each image it pushes:
#   cdxgen (the CycloneDX project's SBOM generator), at the version and integrity hashes of
#     tools/sbom/package-lock.json, in tools/sbom/node_modules; it needs Node.js 20+;
#   oras (the ORAS project's registry client), Debian's package, which attaches each SBOM to
#     its image in the registry as an OCI referrer.
# Idempotent and silent when all is in place; node_modules is rebuilt when the lock changes.
set -o errexit -o pipefail -o nounset
cd "$(dirname "$0")/.."

tools=tools/sbom
log() { printf 'install-sbom-tools: %s\n' "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }
export DEBIAN_FRONTEND=noninteractive

# apt-get as root: directly, or through a CI runner's password-less sudo.
as_root() {
  if [ "$(id -u)" -eq 0 ]; then
    "$@"
  elif sudo -n true 2>/dev/null; then
    sudo -n DEBIAN_FRONTEND=noninteractive "$@"
  else
    die "run as root, or install $* yourself"
  fi
}
node_major() { node --version 2>/dev/null | sed -E 's/^v([0-9]+).*/\1/' || true; }
major=$(node_major)
if [ -z "$major" ] || [ "$major" -lt 20 ] || ! command -v npm >/dev/null; then
  # Debian 12's Node.js is 18; trixie's (install-engine.sh's suite, pinned low) is 20.
  log "installing Node.js 20 or newer and npm"
  as_root apt-get install -y -qq --no-install-recommends -t trixie nodejs npm >/dev/null 2>&1 \
    || as_root apt-get install -y -qq --no-install-recommends nodejs npm >/dev/null \
    || die "could not install Node.js and npm"
fi
major=$(node_major)
{ [ -n "$major" ] && [ "$major" -ge 20 ]; } || die "cdxgen needs Node.js 20 or newer; this is $(node --version 2>/dev/null || echo none)"

if ! command -v oras >/dev/null; then
  log "installing oras (Debian's, Ubuntu's)"
  # Debian 12 has no oras: install-engine.sh's trixie suite does (pinned low, asked for by name).
  as_root apt-get install -y -qq --no-install-recommends oras >/dev/null 2>&1 \
    || as_root apt-get install -y -qq --no-install-recommends -t trixie oras >/dev/null 2>&1 \
    || { as_root apt-get update -qq >/dev/null && as_root apt-get install -y -qq --no-install-recommends oras >/dev/null; } \
    || die "could not install oras (on Debian 12, run scripts/docker-host/install-engine.sh first: it adds the trixie suite)"
fi

# The stamp holds the hash of the lock node_modules was installed from.
wanted=$(sha256sum "$tools/package-lock.json" | cut -d' ' -f1)
if [ "$(cat "$tools/node_modules/.installed" 2>/dev/null || true)" != "$wanted" ]; then
  log "installing cdxgen into $tools/node_modules"
  rm -rf "$tools/node_modules"
  # Not `npm ci`: it refuses a lock without the optional per-CPU packages that the npm
  # registry we lock against does not serve (safer-exec's darwin and arm64 builds), which
  # `npm install` skips as optional. --no-save keeps the lock as committed; what it installs
  # is checked against the lock's integrity hashes.
  npm install --prefix "$tools" --no-save --no-audit --no-fund --loglevel=error >/dev/null
  printf '%s\n' "$wanted" >"$tools/node_modules/.installed"
fi
