#!/usr/bin/env bash
# make push: build the web and nginx images, tag them with the commit (and RELEASE_TAG if
# given, never `latest`), push them to REGISTRY and write what was pushed, pinned by
# digest, to deploy/pushed-images.env. The ECS and Swarm definitions read that file, so
# a deployment runs exactly the bytes pushed here, whatever happens to the tags later.
#
#   make push REGISTRY=123456789012.dkr.ecr.eu-west-1.amazonaws.com [RELEASE_TAG=v1.4.0]
#
# Settings (environment or make variables):
#   REGISTRY                 host[:port] to push to (required)
#   IMAGE_REPOSITORY_PREFIX  repositories are PREFIX/web and PREFIX/nginx (flask-stack)
#   RELEASE_TAG              a second tag for both images, e.g. a version
#   PLATFORMS                the CPUs to build for, comma-separated (the engine's own; with
#                            linux/amd64,linux/arm64 each tag names a manifest list of both)
#   REGISTRY_LOGIN           auto (ECR login when REGISTRY is an ECR host), ecr, or none
#                            (you ran `docker login` yourself)
#   AWS_REGION               the ECR region when it is not in REGISTRY's name
#   ALLOW_DIRTY=1            push uncommitted changes under COMMIT-dirty-TIME
#   SBOM                     on: a CycloneDX SBOM of each image pushed (cdxgen), attached to
#                            it in the registry (oras) and listed in the digests file; off
#   PUSHED_IMAGES_FILE       where to write the digests (deploy/pushed-images.env)
set -o errexit -o pipefail -o nounset
cd "$(dirname "$0")/.."

fail() {
  echo "push: $*" >&2
  exit 1
}

registry=${REGISTRY:-}
[ -n "$registry" ] || fail "REGISTRY is not set: make push REGISTRY=<account>.dkr.ecr.<region>.amazonaws.com (or host:port of your registry)"
# A host name or address and an optional port: no scheme, no path (the prefix holds that).
[[ $registry =~ ^[A-Za-z0-9]([A-Za-z0-9.-]*[A-Za-z0-9])?(:[0-9]{1,5})?$ ]] ||
  fail "REGISTRY '$registry' is not host[:port] (no https://, no path: the path is IMAGE_REPOSITORY_PREFIX)"
prefix=${IMAGE_REPOSITORY_PREFIX:-flask-stack}
# Docker's grammar for repository path components: lower case, separators inside.
[[ $prefix =~ ^[a-z0-9]+([._-][a-z0-9]+)*(/[a-z0-9]+([._-][a-z0-9]+)*)*$ ]] ||
  fail "IMAGE_REPOSITORY_PREFIX '$prefix' is not a repository path (lower case, e.g. flask-stack or team/flask-stack)"
release_tag=${RELEASE_TAG:-}
# The engine's own CPU by default: the other one is built under emulation, many times
# slower (docs/deploy.md, "Images for both CPUs").
platforms=${PLATFORMS:-$(docker version --format '{{.Server.Os}}/{{.Server.Arch}}' 2>/dev/null || true)}
IFS=, read -r -a platform_list <<<"$platforms"
[ "${#platform_list[@]}" -gt 0 ] || fail "PLATFORMS is empty, and the Docker engine did not say its own CPU: is it running?"
for platform in "${platform_list[@]}"; do
  [[ $platform =~ ^linux/(amd64|arm64)$ ]] || fail "PLATFORMS: '$platform' is not linux/amd64 or linux/arm64, the CPUs ECS and this stack support"
done
[ "$(printf '%s\n' "${platform_list[@]}" | sort -u | wc -l)" -eq "${#platform_list[@]}" ] || fail "PLATFORMS names a platform twice: $platforms"
images_file=${PUSHED_IMAGES_FILE:-deploy/pushed-images.env}
compose=${COMPOSE:-docker compose}
sbom=${SBOM:-on}
case "$sbom" in
  on)
    { [ -x tools/sbom/node_modules/.bin/cdxgen ] && command -v oras >/dev/null; } ||
      fail "SBOM=on needs cdxgen and oras: run scripts/install-sbom-tools.sh (or push with SBOM=off)"
    ;;
  off) ;;
  *) fail "SBOM must be on or off, got '$sbom'" ;;
esac
# Beside the digests file, named after it: the SBOMs of the images it names (CI keeps both).
sbom_dir=${images_file%.env}-sboms
oras_options=()
# Docker's engine speaks plain HTTP to a registry on the loopback by default; oras must be told.
if [[ $registry =~ ^(127\.[0-9.]+|localhost)(:[0-9]+)?$ ]]; then oras_options+=(--plain-http); fi

# The commit names the images. Only what goes into them (services/) must be committed:
# an ECR tag is immutable, so a tag must never stand for two different builds.
commit=$(git rev-parse --short=12 HEAD) || fail "not a git checkout: the images are tagged with the commit"
tag=$commit
if [ -n "$(git status --porcelain -- services)" ]; then
  [ "${ALLOW_DIRTY:-0}" = 1 ] || fail "services/ has uncommitted changes; commit them, or set ALLOW_DIRTY=1 to push them as $commit-dirty-<time>"
  tag=$commit-dirty-$(date -u +%Y%m%d%H%M%S)
fi
if [ -n "$release_tag" ]; then
  # Docker's tag grammar; `latest` would move with every push and pin nothing.
  [[ $release_tag =~ ^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$ ]] || fail "RELEASE_TAG '$release_tag' is not a valid image tag"
  [ "$release_tag" != latest ] || fail "RELEASE_TAG=latest pins nothing; use a version"
fi

# ECR's host names are <account>.dkr.ecr.<region>.amazonaws.com[.cn].
ecr_host='^[0-9]{12}\.dkr\.ecr\.([a-z0-9-]+)\.amazonaws\.com(\.cn)?$'
login=${REGISTRY_LOGIN:-auto}
if [ "$login" = auto ]; then
  if [[ $registry =~ $ecr_host ]]; then login=ecr; else login=none; fi
fi
case "$login" in
  ecr)
    region=${AWS_REGION:-${AWS_DEFAULT_REGION:-}}
    if [[ $registry =~ $ecr_host ]]; then region=${BASH_REMATCH[1]}; fi
    [ -n "$region" ] || fail "REGISTRY_LOGIN=ecr needs AWS_REGION when the registry's name does not hold it"
    command -v aws >/dev/null || fail "the AWS CLI (aws) is needed to log in to ECR: install it, or log in yourself and set REGISTRY_LOGIN=none"
    echo "push: logging in to $registry (ECR, $region)"
    # The documented pipe: the token never appears in a process list or a file of ours.
    aws ecr get-login-password --region "$region" | docker login --username AWS --password-stdin "$registry"
    ;;
  none) ;;
  *) fail "REGISTRY_LOGIN must be auto, ecr or none, got '$login'" ;;
esac

web_repository=$registry/$prefix/web
nginx_repository=$registry/$prefix/nginx
tags=("$tag")
if [ -n "$release_tag" ]; then tags+=("$release_tag"); fi

# Builds both images for one platform under one tag. Compose's build follows
# DOCKER_DEFAULT_PLATFORM; another CPU's build runs under QEMU (install-qemu.sh).
build_images() {
  local platform=$1 image_tag=$2
  echo "push: building $web_repository:$image_tag and $nginx_repository:$image_tag for $platform"
  DOCKER_DEFAULT_PLATFORM=$platform WEB_IMAGE=$web_repository NGINX_IMAGE_NAME=$nginx_repository \
    IMAGE_TAG=$image_tag APP_VERSION=$tag $compose -f compose.yaml build
  local built
  built=$(docker image inspect --format '{{.Os}}/{{.Architecture}}' "$web_repository:$image_tag" "$nginx_repository:$image_tag" | sort -u)
  [ "$built" = "$platform" ] || fail "asked for $platform, the engine built $(echo "$built" | paste -sd, -)"
}

# Pushes one tag and prints the digest the registry stored for it.
push_tag() {
  local repository=$1 each=$2 digest
  docker push --quiet "$repository:$each" >&2
  # After a push, Docker records the registry's digest for the image (RepoDigests).
  digest=$(docker image inspect --format '{{range .RepoDigests}}{{println .}}{{end}}' "$repository:$each" |
    grep -m1 -F "$repository@sha256:") || fail "no digest recorded for $repository:$each after the push"
  printf '%s\n' "$digest"
}

# Describes one pushed image (a digest reference, one CPU's) in a CycloneDX SBOM, attaches
# the SBOM to it in the registry as an OCI referrer (subject: that digest; the registry's
# referrers API, or the tag scheme OCI 1.1 defines where it has none), and records
# "<platform>=<the SBOM artifact's reference>" for the digests file.
declare -A sboms=()
attach_sbom() {
  local reference=$1 platform=$2 repository=${1%@*} name file artifact
  name=${repository##*/}
  file=$name-${platform#linux/}.cdx.json
  [ "$sbom" = on ] || return 0
  echo "push: describing $reference in $sbom_dir/$file (cdxgen)"
  scripts/sbom.sh "$reference" "$prefix/$name" "$sbom_dir/$file"
  # From the SBOM's folder: oras refuses a path that leaves the current one.
  artifact=$(cd "$sbom_dir" && oras attach --no-tty "${oras_options[@]}" --format go-template='{{.digest}}' \
    --artifact-type application/vnd.cyclonedx+json "$reference" "$file:application/vnd.cyclonedx+json") ||
    fail "could not attach $file to $reference"
  [[ $artifact =~ ^sha256:[0-9a-f]{64}$ ]] || fail "oras answered '$artifact' for the SBOM of $reference"
  sboms[$repository]+="${sboms[$repository]:+,}$platform=$repository@$artifact"
}

# Only this push's: an earlier push's files would describe other images.
rm -f "$sbom_dir"/*.cdx.json
if [ "${#platform_list[@]}" -eq 1 ]; then
  # One CPU: each tag names the image itself.
  build_images "${platform_list[0]}" "$tag"
  for repository in "$web_repository" "$nginx_repository"; do
    for each in "${tags[@]}"; do
      if [ "$each" != "$tag" ]; then docker tag "$repository:$tag" "$repository:$each"; fi
      digest=$(push_tag "$repository" "$each")
    done
    attach_sbom "$digest" "${platform_list[0]}"
    if [ "$repository" = "$web_repository" ]; then web_digest=$digest; else nginx_digest=$digest; fi
  done
else
  # Several: each CPU's image is pushed under TAG-<cpu> (an image store without containerd
  # holds one platform per name), then one manifest list per tag names them by digest.
  # buildx's imagetools writes the list in the registry, copying no layer.
  declare -A sources=()
  for platform in "${platform_list[@]}"; do
    build_images "$platform" "$tag-${platform#linux/}"
    for repository in "$web_repository" "$nginx_repository"; do
      digest=$(push_tag "$repository" "$tag-${platform#linux/}")
      attach_sbom "$digest" "$platform"
      sources[$repository]+=" $digest"
    done
  done
  for repository in "$web_repository" "$nginx_repository"; do
    tag_options=()
    for each in "${tags[@]}"; do tag_options+=(--tag "$repository:$each"); done
    # shellcheck disable=SC2086 # the sources are digest references, one word each
    docker buildx imagetools create "${tag_options[@]}" ${sources[$repository]} >&2 \
      || fail "could not write the manifest list $repository:$tag"
    # The json form: buildx 0.13 prints its whole report for a plain field.
    digest=$(docker buildx imagetools inspect --format '{{json .Manifest.Digest}}' "$repository:$tag") \
      || fail "could not read the manifest list $repository:$tag back"
    digest=${digest//\"/}
    [[ $digest =~ ^sha256:[0-9a-f]{64}$ ]] || fail "the registry answered '$digest' for $repository:$tag's digest"
    if [ "$repository" = "$web_repository" ]; then web_digest=$repository@$digest; else nginx_digest=$repository@$digest; fi
  done
fi
# The CPUs the images run on: make ecs-deploy refuses a task CPU they cannot run on.
platforms=$(printf '%s\n' "${platform_list[@]}" | sort | paste -sd, -)

mkdir -p "$(dirname "$images_file")"
{
  echo "# Written by make push at $(date -u +%Y-%m-%dT%H:%M:%SZ). Images of commit $commit, pinned by"
  echo "# digest; read by make ecs-render, make ecs-deploy and the Swarm stack. Not committed."
  echo "PUSHED_COMMIT=$commit"
  echo "PUSHED_TAGS=$(
    IFS=,
    echo "${tags[*]}"
  )"
  echo "PUSHED_PLATFORMS=$platforms"
  echo "PUSHED_WEB_IMAGE=$web_digest"
  echo "PUSHED_NGINX_IMAGE=$nginx_digest"
  if [ "$sbom" = on ]; then
    echo "# Each image's CycloneDX SBOM, per CPU, attached to that CPU's image (files in $sbom_dir)."
    echo "PUSHED_WEB_SBOMS=${sboms[$web_repository]}"
    echo "PUSHED_NGINX_SBOMS=${sboms[$nginx_repository]}"
  fi
} >"$images_file.tmp"
mv "$images_file.tmp" "$images_file"
echo "push: pushed tags ${tags[*]}; digests written to $images_file:"
grep '^PUSHED_.*_IMAGE=' "$images_file"
