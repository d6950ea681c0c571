#!/usr/bin/env bash
# Runs the database migrations of the web image about to be rolled out, once, on the swarm
# (make swarm-migrate; deploy/swarm/deploy.sh before it deploys a release): `alembic upgrade
# head` as a one-off job, a replicated-job service of that image on the stack's network.
# Like make migrate under Compose, it connects to Postgres directly (db:5432): the advisory
# lock migrations/env.py takes is a session's, which PgBouncer's transaction pooling would
# not keep. The password is the stack's secret, mounted as for web, never in the job's
# environment. Waits for the database, then for the job, both within SWARM_MIGRATION_TIMEOUT
# seconds (default 900), prints Alembic's output, removes the job, and exits non-zero unless
# the job completed.
#   SWARM_STACK_NAME    the stack (default flask-stack)
#   PUSHED_WEB_IMAGE    the image whose migrations run (default: from PUSHED_IMAGES_FILE)
#   POSTGRES_DB, POSTGRES_USER  as for the stack (empty: the image's defaults)
set -o errexit -o pipefail -o nounset
cd "$(dirname "$0")/../.."

stack=${SWARM_STACK_NAME:-flask-stack}
job=${stack}_migrate
timeout_s=${SWARM_MIGRATION_TIMEOUT:-900}

fail() {
  echo "swarm-migrate: $*" >&2
  exit 1
}

# shellcheck source=deploy/pushed-images.sh
source deploy/pushed-images.sh
image=$(pushed_image PUSHED_WEB_IMAGE)
is_pinned "$image" || fail "'$image' is not an image pinned by digest: run \`make push\` first"
[[ $timeout_s =~ ^[1-9][0-9]*$ ]] || fail "SWARM_MIGRATION_TIMEOUT='$timeout_s' is not a whole number of seconds"
deadline=$((SECONDS + timeout_s))

docker service inspect "${stack}_db" >/dev/null 2>&1 ||
  fail "the stack $stack has no db service to migrate: make swarm-deploy deploys it with the database"

# A task of the image the service names now (an update deploy.sh has just asked for may
# not have begun), Running: Swarm reports a task with a health check so once it is healthy.
db_ready() {
  local image tasks
  image=$(docker service inspect --format '{{.Spec.TaskTemplate.ContainerSpec.Image}}' "${stack}_db")
  tasks=$(docker service ps "${stack}_db" --no-trunc --filter desired-state=running --format '{{.Image}} {{.CurrentState}}')
  grep --quiet --fixed-strings "$image Running" <<<"$tasks"
}
until db_ready; do
  ((SECONDS < deadline)) ||
    fail "the database was not up within ${timeout_s}s (docker service ps ${stack}_db says why): nothing was migrated"
  sleep 2
done

remove_job() {
  docker service rm "$job" >/dev/null 2>&1 || true
}
# One left by an interrupted run would hold the name.
remove_job
trap remove_job EXIT

echo "swarm-migrate: alembic upgrade head, in a one-off job of $image"
# --restart-condition none: a failed migration is reported, not tried again behind our back.
# --no-healthcheck: the image's check asks gunicorn, which the job does not run; Swarm would
# kill a job that outlived the check's start period as unhealthy.
docker service create --quiet --detach --name "$job" \
  --mode replicated-job --restart-condition none --no-healthcheck \
  --with-registry-auth --no-resolve-image --read-only \
  --network "${stack}_app" \
  --secret "source=${stack}_db_password,target=db_password,uid=10001,gid=10001,mode=0400" \
  --env APP_DB_HOST=db --env APP_DB_PORT=5432 \
  --env "APP_DB_NAME=${POSTGRES_DB:-}" --env "APP_DB_USER=${POSTGRES_USER:-}" \
  "$image" alembic upgrade head >/dev/null

# The job's one task: its state, and Swarm's reason when it failed.
job_state() {
  docker service ps "$job" --no-trunc --format '{{.CurrentState}}: {{.Error}}' | sed -n 1p
}
job_output() {
  timeout 60 docker service logs --raw "$job" 2>&1 || true
}

state=$(job_state)
until [[ $state =~ ^(Complete|Failed|Rejected|Shutdown|Orphaned) ]]; do
  if ((SECONDS >= deadline)); then
    job_output >&2
    # Removing the job (on exit) stops it: its transaction rolls back, the database as it was.
    fail "the migration job did not finish within ${timeout_s}s (SWARM_MIGRATION_TIMEOUT): stopped, nothing applied"
  fi
  sleep 2
  state=$(job_state)
done

if [[ $state != Complete* ]]; then
  job_output >&2
  # Every pending migration commits with the version, or none does (migrations/env.py).
  fail "the migration job ended '$state': nothing was applied, the database is as it was"
fi
job_output
echo "swarm-migrate: the migrations ran"
