#!/usr/bin/env bash
# Makes a Docker engine with Compose v2 and buildx answer on this machine.
# Debian 12 has neither Compose v2 nor buildx, so they come from Debian 13 (trixie)
# packages, pinned low so nothing else on the host is upgraded from trixie.
# Idempotent: installs only what is missing, starts dockerd only when it is not answering.
set -o errexit -o pipefail -o nounset

log() { printf 'docker-host: %s\n' "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

engine_answers() { timeout 10 docker info >/dev/null 2>&1; }
compose_v2_present() { docker compose version >/dev/null 2>&1; }
buildx_present() { docker buildx version >/dev/null 2>&1; }

[ "$(id -u)" -eq 0 ] || die "run as root (apt-get and dockerd need it)"

add_trixie_suite() {
  local list=/etc/apt/sources.list.d/docker-host-trixie.sources
  [ -f "$list" ] && return 0
  # Take the mirror and key from the host's own bookworm entry: never hard-code a mirror.
  local host_sources uri keyring
  host_sources=$(grep -l -E '^Suites:.*bookworm' /etc/apt/sources.list.d/*.sources 2>/dev/null | head -n1) \
    || die "no deb822 bookworm entry in /etc/apt/sources.list.d to copy the mirror from"
  uri=$(awk '/^URIs:/ && /debian\/?$/ {print $2; exit}' "$host_sources")
  keyring=$(awk '/^Signed-By:/ {print $2; exit}' "$host_sources")
  [ -n "$uri" ] || die "could not read a Debian mirror URI from $host_sources"
  log "adding the trixie suite from $uri (pinned to priority 100)"
  cat >"$list" <<SOURCES
Types: deb
URIs: $uri
Suites: trixie
Components: main
Signed-By: ${keyring:-/usr/share/keyrings/debian-archive-keyring.gpg}
SOURCES
  # Priority 100: trixie packages are used only when asked for with -t trixie.
  cat >/etc/apt/preferences.d/docker-host-trixie <<'PIN'
Package: *
Pin: release n=trixie
Pin-Priority: 100
PIN
}

install_packages() {
  if command -v dockerd >/dev/null && compose_v2_present && buildx_present && command -v debootstrap >/dev/null; then
    return 0
  fi
  add_trixie_suite
  log "installing docker.io, compose v2, buildx (trixie) and debootstrap; about a minute"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >/dev/null || die "apt-get update failed; check the package mirror"
  apt-get install -y -qq debootstrap >/dev/null || die "could not install debootstrap"
  apt-get install -y -qq -t trixie docker.io docker-cli docker-compose docker-buildx >/dev/null \
    || die "could not install the Docker engine packages from trixie"
  compose_v2_present || die "'docker compose' still missing after install"
  buildx_present || die "'docker buildx' still missing after install"
}

start_daemon() {
  engine_answers && return 0
  log "starting dockerd (log: /var/log/dockerd.log)"
  # No systemd here: run the daemon in the background, detached from this shell.
  nohup setsid dockerd >/var/log/dockerd.log 2>&1 </dev/null &
  local waited=0
  until engine_answers; do
    sleep 1
    waited=$((waited + 1))
    [ "$waited" -lt 60 ] || die "dockerd did not answer within 60 s; see /var/log/dockerd.log"
  done
}

if engine_answers && compose_v2_present && buildx_present; then
  exit 0
fi
install_packages
start_daemon
log "engine ready: $(docker version --format 'server {{.Server.Version}}'), $(docker compose version --short | sed 's/^/compose /')"
