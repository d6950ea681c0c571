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
#   REGISTRY_LOGIN           auto (ECR login when REGISTRY is an ECR host), ecr, or none
#                            (you ran `docker login` yourself)
#   AWS_REGION               the ECR region when it is not in REGISTRY's name
#   ALLOW_DIRTY=1            push uncommitted changes under COMMIT-dirty-TIME
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
images_file=${PUSHED_IMAGES_FILE:-deploy/pushed-images.env}
compose=${COMPOSE:-docker compose}

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
echo "push: building $web_repository:$tag and $nginx_repository:$tag"
WEB_IMAGE=$web_repository NGINX_IMAGE_NAME=$nginx_repository IMAGE_TAG=$tag APP_VERSION=$tag \
  $compose -f compose.yaml build

tags=("$tag")
if [ -n "$release_tag" ]; then tags+=("$release_tag"); fi

# Pushes every tag of one repository and prints the digest the registry stored.
push_repository() {
  local repository=$1 each digest
  for each in "${tags[@]}"; do
    if [ "$each" != "$tag" ]; then docker tag "$repository:$tag" "$repository:$each"; fi
    docker push --quiet "$repository:$each" >&2
  done
  # After a push, Docker records the registry's digest for the image (RepoDigests).
  digest=$(docker image inspect --format '{{range .RepoDigests}}{{println .}}{{end}}' "$repository:$tag" |
    grep -m1 -F "$repository@sha256:") || fail "no digest recorded for $repository:$tag after the push"
  printf '%s\n' "$digest"
}
web_digest=$(push_repository "$web_repository")
nginx_digest=$(push_repository "$nginx_repository")
# The CPU the images were built for: make ecs-deploy refuses a task CPU they cannot run on.
platforms=$(docker image inspect --format '{{.Os}}/{{.Architecture}}' "$web_repository:$tag" "$nginx_repository:$tag" | sort -u)
[ "$(wc -l <<<"$platforms")" -eq 1 ] || fail "web and nginx were built for different platforms: $platforms"

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
} >"$images_file.tmp"
mv "$images_file.tmp" "$images_file"
echo "push: pushed tags ${tags[*]}; digests written to $images_file:"
grep '^PUSHED_.*_IMAGE=' "$images_file"
