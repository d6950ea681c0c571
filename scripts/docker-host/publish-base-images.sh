#!/usr/bin/env bash
# Puts the two base images make push builds on (python, nginx) into a registry as manifest
# lists of both CPUs, the shape of the official tags, for machines that cannot reach those:
# buildx then takes each platform's base from one name, as it would from Docker Hub. The
# engine's own CPU comes from the images build-base-images.sh made (real or stand-in), the
# other from its BASE_PLATFORM stand-ins (stand-in/linux-<cpu>/<tag>).
#
#   publish-base-images.sh REGISTRY     (host:port, logged in already)
#
# Prints the build ARGs that point the Dockerfiles at them, one per line:
#   PYTHON_IMAGE=REGISTRY/base/python:<tag>
#   NGINX_IMAGE=REGISTRY/base/nginx:<tag>
set -o errexit -o pipefail -o nounset

repo=$(cd "$(dirname "$0")/../.." && pwd)
registry=${1:?usage: publish-base-images.sh REGISTRY}

log() { printf 'publish-base-images: %s\n' "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

base_tag() { "$repo/scripts/dockerfile-arg.sh" "$repo/services/$1/Dockerfile" "$2"; }
native=$(docker version --format '{{.Server.Os}}/{{.Server.Arch}}')
case "$native" in
  linux/amd64) other=linux/arm64 ;;
  linux/arm64) other=linux/amd64 ;;
  *) die "the engine runs $native; the stack publishes linux/amd64 and linux/arm64" ;;
esac

# Pushes a local image under a tag of the registry and prints the digest reference stored.
push_as() {
  local image=$1 target=$2
  docker image inspect "$image" >/dev/null 2>&1 || die "$image is not in the engine: run build-base-images.sh (with BASE_PLATFORM=$other for the other CPU)"
  docker tag "$image" "$target"
  docker push --quiet "$target" >/dev/null || die "could not push $target"
  docker image inspect --format '{{range .RepoDigests}}{{println .}}{{end}}' "$target" |
    grep -m1 -F "${target%:*}@sha256:" || die "no digest recorded for $target"
}

publish() {
  local variable=$1 tag=$2 name repository native_ref other_ref
  name=${tag%%:*}
  name=${name##*/}
  repository=$registry/base/$name
  native_ref=$(push_as "$tag" "$repository:${tag#*:}-${native#linux/}")
  other_ref=$(push_as "stand-in/${other/\//-}/$tag" "$repository:${tag#*:}-${other#linux/}")
  docker buildx imagetools create --tag "$repository:${tag#*:}" "$native_ref" "$other_ref" >/dev/null 2>&1 ||
    die "could not write the manifest list $repository:${tag#*:}"
  log "$repository:${tag#*:}: $native and $other"
  printf '%s=%s\n' "$variable" "$repository:${tag#*:}"
}

publish PYTHON_IMAGE "${PYTHON_IMAGE:-$(base_tag web PYTHON_IMAGE)}"
publish NGINX_IMAGE "${NGINX_IMAGE:-$(base_tag nginx NGINX_IMAGE)}"
