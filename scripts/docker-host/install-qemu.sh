#!/usr/bin/env bash
# Lets this machine build and run images for the other CPU (make push PLATFORMS=...,
# make test-arm64): QEMU's user-mode emulators from Debian's qemu-user-static, registered
# with the kernel's binfmt_misc from the package's own binfmt.d entries. Their F flag opens
# the emulator at registration, so it works inside containers, where its file is not.
#
# QEMU 8 or newer: 7.2 (Debian 12's) answers EINVAL to prctl(PR_SET_CHILD_SUBREAPER), which
# the web image's PID 1 (stack/drain_then_stop.py) needs to reap, so web would not start
# under it. On Debian 12 the package comes from the trixie suite that install-engine.sh adds.
# Idempotent: installs and registers only what is missing or older.
set -o errexit -o pipefail -o nounset

log() { printf 'qemu: %s\n' "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

binfmt=/proc/sys/fs/binfmt_misc
# The emulator this stack needs: the other CPU of the two it publishes for.
case "$(uname -m)" in
  x86_64) handler=qemu-aarch64 other=linux/arm64 ;;
  aarch64) handler=qemu-x86_64 other=linux/amd64 ;;
  *) die "this machine is $(uname -m); the stack publishes for x86_64 and aarch64" ;;
esac
# PLATFORMS (make push's) naming only this machine's CPU needs no emulator.
if [ -n "${PLATFORMS:-}" ] && [[ ,$PLATFORMS, != *,$other,* ]]; then
  log "PLATFORMS=$PLATFORMS: no other CPU to emulate"
  exit 0
fi
# What was registered, and from which package version (reset with the kernel's table at boot).
stamp=/run/flask-stack-$handler.registered

registered() { grep -qs '^enabled' "$binfmt/$handler" && grep -qs '^flags:.*F' "$binfmt/$handler"; }

if [ "$(id -u)" -ne 0 ]; then
  # A CI runner's user may use sudo without a password: the rest runs as root.
  if sudo -n true 2>/dev/null; then exec sudo -n "$0" "$@"; fi
  # Docker Desktop registers its own emulators; without root there is nothing to change.
  registered || die "no $handler emulator is registered: run this as root"
  log "ready: $handler is registered (not root: its QEMU version is not checked)"
  exit 0
fi

installed() { dpkg-query -W -f '${Version}' qemu-user-static 2>/dev/null || true; }
if [ -z "$(installed)" ] || dpkg --compare-versions "$(installed)" lt 1:8; then
  log "installing qemu-user-static 8 or newer"
  export DEBIAN_FRONTEND=noninteractive
  candidate=$(apt-cache policy qemu-user-static | awk '/Candidate:/ {print $2}')
  if [ -n "$candidate" ] && [ "$candidate" != "(none)" ] && dpkg --compare-versions "$candidate" ge 1:8; then
    apt-get install -y -qq qemu-user-static >/dev/null
  else
    apt-get install -y -qq -t trixie qemu-user-static >/dev/null ||
      die "could not install qemu-user-static from trixie (on Debian 12, run scripts/docker-host/install-engine.sh first: it adds the suite)"
  fi
  dpkg --compare-versions "$(installed)" ge 1:8 || die "qemu-user-static $(installed) is older than 8"
fi

# A container or a minimal host may start without the filesystem mounted.
if ! [ -e "$binfmt/register" ]; then
  log "mounting binfmt_misc"
  mount -t binfmt_misc binfmt_misc "$binfmt" || die "could not mount binfmt_misc at $binfmt"
fi

# Registered from another version (an F handler keeps the file it opened): register again.
if ! registered || [ "$(cat "$stamp" 2>/dev/null || true)" != "$(installed)" ]; then
  entry=/usr/lib/binfmt.d/$handler.conf
  [ -f "$entry" ] || die "qemu-user-static $(installed) has no $entry"
  if [ -e "$binfmt/$handler" ]; then echo -1 >"$binfmt/$handler"; fi
  # The kernel's documented interface, which systemd-binfmt uses too (this host runs no systemd).
  cat "$entry" >"$binfmt/register"
  registered || die "$handler did not register with the F flag: $(cat "$binfmt/$handler")"
  installed >"$stamp"
  log "registered $handler from qemu-user-static $(installed)"
fi
log "ready: $handler ($(grep '^flags' "$binfmt/$handler")), qemu-user-static $(installed)"
