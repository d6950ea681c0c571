#!/usr/bin/env bash
# make swarm-push-db: builds the database's two images (services/db: Postgres, and PgBouncer
# on it), pushes them to REGISTRY and writes their digests to SWARM_DB_IMAGES_FILE, which
# deploy/swarm/deploy.sh reads. Apart from make push on purpose: two builds of one Dockerfile
# are not byte for byte the same, so pushed with each release the database would get a new
# digest, and a restart, every time. Run it once, and again when Postgres or PgBouncer change.
#
#   make swarm-push-db REGISTRY=registry.example.com:5000
#
#   REGISTRY                 host[:port] to push to (required); log in first (docker login)
#   IMAGE_REPOSITORY_PREFIX  repositories are PREFIX/db and PREFIX/pgbouncer (flask-stack)
#   SWARM_DB_IMAGES_FILE     where the digests go (deploy/swarm/db-images.env)
#   POSTGRES_IMAGE           the Postgres base image, as for compose.db.yaml's build
set -o errexit -o pipefail -o nounset
# A failed build or push inside push_target's \$(...) stops the script too.
shopt -s inherit_errexit
cd "$(dirname "$0")/../.."

fail() {
  echo "swarm-push-db: $*" >&2
  exit 1
}

registry=${REGISTRY:-}
[[ -n $registry ]] || fail "REGISTRY is not set: make swarm-push-db REGISTRY=host[:port]"
prefix=${IMAGE_REPOSITORY_PREFIX:-flask-stack}
images_file=${SWARM_DB_IMAGES_FILE:-deploy/swarm/db-images.env}
# A tag of its own per push: registries with immutable tags refuse a tag pushed twice.
tag=db-$(date -u +%Y%m%d%H%M%S)

build_args=()
if [[ -n ${POSTGRES_IMAGE:-} ]]; then build_args=(--build-arg "POSTGRES_IMAGE=$POSTGRES_IMAGE"); fi

# Builds one target of services/db, pushes it, prints the digest the registry stored.
push_target() {
  local target=$1 repository=$registry/$prefix/$2 digest
  docker build --quiet "${build_args[@]}" --target "$target" --tag "$repository:$tag" services/db >&2
  docker push --quiet "$repository:$tag" >&2
  digest=$(docker image inspect --format '{{range .RepoDigests}}{{println .}}{{end}}' "$repository:$tag" |
    grep -m1 -F "$repository@sha256:") || fail "no digest recorded for $repository:$tag after the push"
  printf '%s\n' "$digest"
}

echo "swarm-push-db: building and pushing $registry/$prefix/db:$tag and $registry/$prefix/pgbouncer:$tag"
db_digest=$(push_target postgres db)
pgbouncer_digest=$(push_target pgbouncer pgbouncer)

mkdir -p "$(dirname "$images_file")"
{
  echo "# Written by make swarm-push-db at $(date -u +%Y-%m-%dT%H:%M:%SZ); read by make swarm-deploy."
  echo "PUSHED_DB_IMAGE=$db_digest"
  echo "PUSHED_PGBOUNCER_IMAGE=$pgbouncer_digest"
} >"$images_file.tmp"
mv "$images_file.tmp" "$images_file"
echo "swarm-push-db: digests written to $images_file:"
grep '^PUSHED_' "$images_file"
