#!/usr/bin/env bash
# Makes sure the base images our Dockerfiles name exist in the local engine.
# Where the real tag can be pulled, it is; where no registry is reachable (our CI
# machines), a labelled stand-in is built from Debian packages instead, from the
# Dockerfiles in .ci/stand-ins/ (CI's own plumbing, not part of the stack).
# Usage: build-base-images.sh [python-tag] [nginx-tag]. Each tag defaults to the one its
# Dockerfile's ARG names (PYTHON_IMAGE, NGINX_IMAGE, PROMETHEUS_IMAGE, NGINX_EXPORTER_IMAGE,
# and POSTGRES_IMAGE: services/db/Dockerfile, the base of the db and pgbouncer images),
# unless that variable is set.
#
# BASE_PLATFORM=linux/arm64 (another CPU than the engine's, emulated: install-qemu.sh)
# builds stand-ins of the two images make push builds on (python, nginx) for that CPU,
# named stand-in/linux-arm64/<tag>: an image store without containerd holds one platform
# per name, and the engine's own must keep theirs. Nothing is pulled for it: where a
# registry answers, buildx takes each platform from the real tag's manifest list instead.
# publish-base-images.sh joins both CPUs' under one name in a registry.
set -o errexit -o pipefail -o nounset

repo=$(cd "$(dirname "$0")/../.." && pwd)
stand_ins="$repo/.ci/stand-ins"
base_tag() { "$repo/scripts/dockerfile-arg.sh" "$repo/services/$1/Dockerfile" "$2"; }
python_tag=${1:-${PYTHON_IMAGE:-$(base_tag web PYTHON_IMAGE)}}
nginx_tag=${2:-${NGINX_IMAGE:-$(base_tag nginx NGINX_IMAGE)}}
prometheus_tag=${PROMETHEUS_IMAGE:-$(base_tag prometheus PROMETHEUS_IMAGE)}
nginx_exporter_tag=${NGINX_EXPORTER_IMAGE:-$(base_tag nginx-exporter NGINX_EXPORTER_IMAGE)}
postgres_tag=${POSTGRES_IMAGE:-$(base_tag db POSTGRES_IMAGE)}
# forky carries the Python, nginx and Postgres majors the official tags ship; trixie's are older.
suite=forky
native_platform=$(docker version --format '{{.Server.Os}}/{{.Server.Arch}}' 2>/dev/null || true)
platform=${BASE_PLATFORM:-$native_platform}
arch=${platform#*/}
foreign=0
[ "$platform" = "$native_platform" ] || foreign=1
if [ "$foreign" = 1 ]; then
  rootfs_tag="stand-in/debian-minbase:$suite-$arch"
else
  rootfs_tag="stand-in/debian-minbase:$suite"
fi

log() { printf 'base-images: %s\n' "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

have_image() { docker image inspect "$1" >/dev/null 2>&1; }
try_pull() { timeout 60 docker pull --quiet "$1" >/dev/null 2>&1; }

debian_mirror() {
  local uri
  uri=$(awk '/^URIs:/ && /debian\/?$/ {print $2; exit}' /etc/apt/sources.list.d/*.sources 2>/dev/null || true)
  [ -n "$uri" ] || die "no Debian mirror found in /etc/apt/sources.list.d/*.sources"
  printf '%s' "$uri"
}

build_rootfs_image() {
  have_image "$rootfs_tag" && return 0
  command -v debootstrap >/dev/null || {
    log "installing debootstrap"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq debootstrap >/dev/null \
      || die "could not install debootstrap (run apt-get update first?)"
  }
  local rootfs
  rootfs=$(mktemp -d /tmp/stand-in-rootfs.XXXXXX)
  log "debootstrapping a minimal Debian $suite for $platform (about 30 s; minutes emulated)"
  # The host's debootstrap has no script named forky; sid's script fits any testing suite.
  # For another CPU, its second stage runs under the emulator that install-qemu.sh registered.
  debootstrap --arch="$arch" --variant=minbase --include=passwd,ca-certificates "$suite" "$rootfs" "$(debian_mirror)" \
    /usr/share/debootstrap/scripts/sid >/tmp/stand-in-debootstrap.log 2>&1 \
    || { rm -rf "$rootfs"; die "debootstrap failed; see /tmp/stand-in-debootstrap.log"; }
  rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/*
  # The package mirror is a frozen snapshot, so its Release files look expired.
  printf 'Acquire::Check-Valid-Until "false";\n' >"$rootfs/etc/apt/apt.conf.d/99snapshot-mirror"
  # Trust the host's CA bundle: the registries are reached through a TLS-re-signing proxy.
  # A copy outside /etc/ssl/certs survives update-ca-certificates; the stand-ins restore it.
  cp /etc/ssl/certs/ca-certificates.crt "$rootfs/etc/ssl/certs/ca-certificates.crt"
  cp /etc/ssl/certs/ca-certificates.crt "$rootfs/etc/ssl/host-ca-bundle.crt"
  tar -C "$rootfs" -c . | docker import --platform "$platform" \
    --change 'CMD ["bash"]' \
    --change 'LABEL org.opencontainers.image.description="local stand-in built from Debian packages"' \
    - "$rootfs_tag" >/dev/null
  rm -rf "$rootfs"
}

# The stand-ins' files, as one digest: a stand-in built from other files is built again.
stand_in_source() { cat "$stand_ins"/* | sha256sum | cut -c1-16; }

build_stand_in() {
  local tag=$1 dockerfile=$2
  log "building a stand-in for $tag from Debian $suite packages"
  docker build --quiet --platform "$platform" \
    --build-arg ROOTFS_IMAGE="$rootfs_tag" \
    --label org.opencontainers.image.description="local stand-in for $tag built from Debian packages" \
    --label flask-stack.stand-in-source="$(stand_in_source)" \
    -f "$stand_ins/$dockerfile" -t "$tag" "$stand_ins" >/dev/null \
    || die "building the $tag stand-in failed; rerun without --quiet to see why"
}

# A label of the image, empty when it has none.
label() { docker image inspect --format "{{ index .Config.Labels \"$2\" }}" "$1" 2>/dev/null || true; }

ensure() {
  local tag=$1 dockerfile=$2
  if have_image "$tag"; then
    # A real image, or a stand-in built from the files as they are now: nothing to do.
    case "$(label "$tag" org.opencontainers.image.description)" in
      "local stand-in"*) ;;
      *) return 0 ;;
    esac
    [ "$(label "$tag" flask-stack.stand-in-source)" = "$(stand_in_source)" ] && return 0
    log "the stand-in for $tag was built from older files"
    build_rootfs_image
    build_stand_in "$tag" "$dockerfile"
    return 0
  fi
  if try_pull "$tag"; then
    log "pulled $tag"
    return 0
  fi
  build_rootfs_image
  build_stand_in "$tag" "$dockerfile"
}

docker info >/dev/null 2>&1 || die "Docker engine not reachable: run scripts/docker-host/install-engine.sh first"
if [ "$foreign" = 1 ]; then
  case "$arch" in
    arm64) emulator=qemu-aarch64 ;;
    amd64) emulator=qemu-x86_64 ;;
    *) die "BASE_PLATFORM $platform: only linux/amd64 and linux/arm64 are published" ;;
  esac
  grep -qs '^enabled' "/proc/sys/fs/binfmt_misc/$emulator" \
    || die "no emulator registered for $platform: run scripts/docker-host/install-qemu.sh first"
  # Names of their own, never pulled (see the head of this file); rebuilt from newer files.
  for each in "$python_tag python.Dockerfile" "$nginx_tag nginx.Dockerfile"; do
    read -r tag dockerfile <<<"$each"
    tag="stand-in/${platform/\//-}/$tag"
    have_image "$tag" && [ "$(label "$tag" flask-stack.stand-in-source)" = "$(stand_in_source)" ] && continue
    build_rootfs_image
    build_stand_in "$tag" "$dockerfile"
  done
  exit 0
fi
ensure "$python_tag" python.Dockerfile
ensure "$nginx_tag" nginx.Dockerfile
ensure "$prometheus_tag" prometheus.Dockerfile
ensure "$nginx_exporter_tag" nginx-exporter.Dockerfile
ensure "$postgres_tag" postgres.Dockerfile
