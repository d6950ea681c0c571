#!/usr/bin/env bash
# Deploys deploy/swarm/stack.yaml and its database, deploy/swarm/db.yaml, to the swarm the
# Docker CLI talks to (DOCKER_HOST or the current context: a manager) with the digests
# `make push` and `make swarm-push-db` recorded. The same command deploys, scales
# (WEB_REPLICAS) and rolls out a new release, in three steps:
#   1. the database alone (db.yaml), so that it is up before anything of the release;
#   2. the new web image's migrations, a one-off job (deploy/swarm/migrate.sh): if it fails,
#      this script stops there, and the running release serves on, untouched;
#   3. everything: Swarm updates what changed, one web task at a time, start-first, rolling
#      back by itself when a new task fails its health check.
# Waits until the services have converged, and exits non-zero when Swarm rolled an update
# back or paused it.
#   SWARM_STACK_NAME    the stack (default flask-stack)
#   PUSHED_IMAGES_FILE  the digests (default deploy/pushed-images.env); PUSHED_WEB_IMAGE
#                       and PUSHED_NGINX_IMAGE in the environment win
#   SWARM_DB_IMAGES_FILE  the database's digests (default deploy/swarm/db-images.env);
#                       PUSHED_DB_IMAGE and PUSHED_PGBOUNCER_IMAGE in the environment win
#   DB_PASSWORD_FILE    the password the secret is made from (default secrets/db_password)
#   SWARM_MIGRATION_TIMEOUT  seconds for the database to be up and the migrations to run
#                       (default 900)
#   ROLLBACK_WAIT_SECONDS  how long to wait for Swarm's automatic rollback to end
#                       before reporting it (default 600)
#   WEB_REPLICAS, HTTP_PORT and the other ${VARS} of the stack files
set -o errexit -o pipefail -o nounset
cd "$(dirname "$0")/../.."

stack=${SWARM_STACK_NAME:-flask-stack}
# shellcheck source=deploy/pushed-images.sh
source deploy/pushed-images.sh

fail() {
  echo "swarm-deploy: $*" >&2
  exit 1
}

PUSHED_WEB_IMAGE=$(pushed_image PUSHED_WEB_IMAGE)
PUSHED_NGINX_IMAGE=$(pushed_image PUSHED_NGINX_IMAGE)
for image in "$PUSHED_WEB_IMAGE" "$PUSHED_NGINX_IMAGE"; do
  is_pinned "$image" || fail "'$image' is not an image pinned by digest: run \`make push\` first"
done
# The database's images, from their own file (deploy/swarm/push-db.sh says why).
PUSHED_DB_IMAGE=$(pushed_images_file=${SWARM_DB_IMAGES_FILE:-deploy/swarm/db-images.env} pushed_image PUSHED_DB_IMAGE)
PUSHED_PGBOUNCER_IMAGE=$(pushed_images_file=${SWARM_DB_IMAGES_FILE:-deploy/swarm/db-images.env} pushed_image PUSHED_PGBOUNCER_IMAGE)
for image in "$PUSHED_DB_IMAGE" "$PUSHED_PGBOUNCER_IMAGE"; do
  is_pinned "$image" || fail "'$image' is not an image pinned by digest: run \`make swarm-push-db\` first"
done
export PUSHED_WEB_IMAGE PUSHED_NGINX_IMAGE PUSHED_DB_IMAGE PUSHED_PGBOUNCER_IMAGE

# The stack files resolve a relative path from their own folder: hand them an absolute one.
DB_PASSWORD_FILE=$(realpath --canonicalize-missing -- "${DB_PASSWORD_FILE:-secrets/db_password}")
[[ -s $DB_PASSWORD_FILE ]] || fail "no database password in $DB_PASSWORD_FILE: make db-password writes a random one"
export DB_PASSWORD_FILE

# Exactly one node for the database: with none its task waits for ever; with two it could
# start on the other one, on an empty volume.
db_nodes=$(docker node ls --quiet --filter node.label=flask-stack.db=true | wc -l)
[[ $db_nodes -eq 1 ]] ||
  fail "$db_nodes nodes carry the label flask-stack.db=true; exactly one must, the node that keeps the database's data: docker node update --label-add flask-stack.db=true NODE"

# Each of the stack's services: its name, and the state, start and message of its last
# update (empty when it has had none).
update_states() {
  docker service ls --quiet --filter "label=com.docker.stack.namespace=$stack" |
    xargs --no-run-if-empty docker service inspect \
      --format '{{.Spec.Name}}|{{with .UpdateStatus}}{{.State}}|{{.StartedAt}}|{{.Message}}{{end}}'
}

# The tasks of the images this deploy rolled out that a service has stopped: where each ran,
# how it ended and why (Swarm keeps a few per replica; the latest first).
stopped_tasks() {
  docker service ps --no-trunc --filter desired-state=shutdown \
    --format '  {{.Name}} {{.Image}} on {{.Node}}: {{.CurrentState}} {{.Error}}' "$1" |
    grep --fixed-strings -e " $PUSHED_WEB_IMAGE " -e " $PUSHED_NGINX_IMAGE " | head -n 5 || true
}

# An update an earlier command left behind (a rollback by hand, say) is not this deploy's.
before=$(update_states)

# 1. The database alone, unchanged unless its images or settings changed; not waited for
#    here: the migration waits for it, within its own bound.
docker stack deploy --compose-file deploy/swarm/db.yaml --with-registry-auth \
  --resolve-image never --detach=true "$stack" >/dev/null
# 2. The new release's migrations, before any task of it starts.
deploy/swarm/migrate.sh ||
  fail "the migration failed: nothing of the new release was deployed, the running release serves on"

# 3. Everything.
# --with-registry-auth: the nodes pull with this CLI's login to the registry.
# --detach=false: return when every service has converged, or fail when one cannot. It
# returns 0 once a service has converged back on its previous version after an automatic
# rollback too, so the update states below say whether the release went out.
status=0
docker stack deploy --compose-file deploy/swarm/stack.yaml --compose-file deploy/swarm/db.yaml \
  --with-registry-auth --prune \
  --resolve-image never --detach=false "$stack" || status=$?

# On a descriptor of its own: nothing in the loop reads the list as its input.
while IFS='|' read -r -u 3 service state started message; do
  [[ -n $service ]] || continue
  if grep --quiet --fixed-strings --line-regexp "$service|$state|$started|$message" <<<"$before"; then
    continue
  fi
  case $state in
    rollback_started | rollback_completed)
      echo "swarm-deploy: Swarm rolled $service back to its previous version: $message" >&2
      # The deploy command can return before the rollback's own monitor period ends: wait
      # (bounded) so that the stack has settled when this script does.
      for ((waited = 0; waited < ${ROLLBACK_WAIT_SECONDS:-600}; waited += 2)); do
        state=$(docker service inspect --format '{{with .UpdateStatus}}{{.State}}{{end}}' "$service")
        [[ $state == rollback_started ]] || break
        sleep 2
      done
      echo "swarm-deploy: $service is $state; the new release's tasks it stopped:" >&2
      stopped_tasks "$service" >&2
      status=1
      ;;
    paused | rollback_paused)
      echo "swarm-deploy: Swarm paused the update of $service ($state): $message" >&2
      status=1
      ;;
  esac
done 3< <(update_states)
exit "$status"
