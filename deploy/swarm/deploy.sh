#!/usr/bin/env bash
# Deploys deploy/swarm/stack.yaml to the swarm the Docker CLI talks to (DOCKER_HOST or the
# current context: a manager) with the digests `make push` recorded. The same command
# deploys, scales (WEB_REPLICAS) and rolls out a new release: Swarm updates what changed,
# one web task at a time, start-first, rolling back by itself when a new task fails its
# health check. Waits until the services have converged.
#   SWARM_STACK_NAME    the stack (default flask-stack)
#   PUSHED_IMAGES_FILE  the digests (default deploy/pushed-images.env); PUSHED_WEB_IMAGE
#                       and PUSHED_NGINX_IMAGE in the environment win
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

# --with-registry-auth: the nodes pull with this CLI's login to the registry.
# --detach=false: return when every service has converged, or fail when one cannot.
exec docker stack deploy --compose-file deploy/swarm/stack.yaml --with-registry-auth --prune \
  --resolve-image never --detach=false "$stack"
