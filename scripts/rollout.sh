#!/usr/bin/env bash
# Rolling deploy of the web service, start-first and one replica at a time:
# build the new image, run the migrations (scripts/migrate.sh), then for each running
# replica start a new one, wait until it is healthy and nginx has re-resolved `web`, and
# only then stop the old one (which drains: see services/web/stack/drain.py). Usage: make rollout [APP_VERSION=...]
set -o errexit -o pipefail -o nounset

compose=${COMPOSE:-docker compose}
# Longer than NGINX_RESOLVER_VALID (2s): nginx must know the new replica before an old one drains.
discovery_seconds=${ROLLOUT_DISCOVERY_SECONDS:-3}

$compose build web

mapfile -t old_replicas < <($compose ps --quiet --status running web)
count=${#old_replicas[@]}
if [ "$count" -eq 0 ]; then
  echo "rollout: no web replica is running; start the stack with 'make up' first" >&2
  exit 1
fi

# Migrations first, with the new image: if they fail, nothing has been replaced and the old
# version serves on. A migration must suit the old version too (docs/database.md, expand/contract).
if ! COMPOSE="$compose" "$(dirname "$0")/migrate.sh"; then
  echo "rollout: the migration failed; no replica was replaced, the running version serves on" >&2
  exit 1
fi

for ((i = 0; i < count; i++)); do
  old=${old_replicas[$i]}
  echo "rollout: replica $((i + 1)) of $count: starting its replacement"
  $compose up --detach --wait --no-deps --no-recreate --scale "web=$((count + 1))" web
  sleep "$discovery_seconds"
  echo "rollout: replica $((i + 1)) of $count: draining and stopping ${old:0:12}"
  # Without --time, docker waits the container's stop_grace_period before SIGKILL.
  docker stop "$old" >/dev/null
  docker rm --volumes "$old" >/dev/null
done
echo "rollout: $count replica(s) replaced"
