#!/usr/bin/env bash
# Deploys deploy/swarm/stack.yaml to the swarm the Docker CLI talks to (DOCKER_HOST or the
# current context: a manager) with the digests `make push` recorded. The same command
# deploys, scales (WEB_REPLICAS) and rolls out a new release: Swarm updates what changed,
# one web task at a time, start-first, rolling back by itself when a new task fails its
# health check. Waits until the services have converged, and exits non-zero when Swarm
# rolled an update back or paused it.
#   SWARM_STACK_NAME    the stack (default flask-stack)
#   PUSHED_IMAGES_FILE  the digests (default deploy/pushed-images.env); PUSHED_WEB_IMAGE
#                       and PUSHED_NGINX_IMAGE in the environment win
#   ROLLBACK_WAIT_SECONDS  how long to wait for Swarm's automatic rollback to end
#                       before reporting it (default 600)
#   WEB_REPLICAS, HTTP_PORT and the other ${VARS} of the stack file
set -o errexit -o pipefail -o nounset
cd "$(dirname "$0")/../.."

stack=${SWARM_STACK_NAME:-flask-stack}
# shellcheck source=deploy/pushed-images.sh
source deploy/pushed-images.sh

PUSHED_WEB_IMAGE=$(pushed_image PUSHED_WEB_IMAGE)
PUSHED_NGINX_IMAGE=$(pushed_image PUSHED_NGINX_IMAGE)
for image in "$PUSHED_WEB_IMAGE" "$PUSHED_NGINX_IMAGE"; do
  if ! is_pinned "$image"; then
    echo "swarm-deploy: '$image' is not an image pinned by digest: run \`make push\` first" >&2
    exit 1
  fi
done
export PUSHED_WEB_IMAGE PUSHED_NGINX_IMAGE

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

# --with-registry-auth: the nodes pull with this CLI's login to the registry.
# --detach=false: return when every service has converged, or fail when one cannot. It
# returns 0 once a service has converged back on its previous version after an automatic
# rollback too, so the update states below say whether the release went out.
status=0
docker stack deploy --compose-file deploy/swarm/stack.yaml --with-registry-auth --prune \
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
