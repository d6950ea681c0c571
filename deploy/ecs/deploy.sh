#!/usr/bin/env bash
# Deploys deploy/ecs/template.yaml with the image digests `make push` recorded (make ecs-deploy).
#   ECS_STACK_NAME         the stack (default flask-stack)
#   ECS_PARAMETERS         the other parameters, "CertificateArn=... VpcId=... VpcCidr=..."
#   PUSHED_IMAGES_FILE     where the digests are (default deploy/pushed-images.env);
#                          PUSHED_WEB_IMAGE / PUSHED_NGINX_IMAGE in the environment win
#   ECS_REPOSITORIES_ONLY  1: deploy with empty images, creating only the ECR repositories
#                          (the first deploy, before the first push)
#   DRY_RUN                1: print the commands instead of running them
#   ECS_PYTHON             the Python of deploy/ecs's tools (default .venv-deploy/bin/python)
# With a database, the migrations (make ecs-migrate, deploy/ecs/migrate.py) run as a one-off
# task first, and a failed one stops here, the old release still serving. When the database
# is new to the stack, its settings are deployed first with the images the stack already
# runs, so that the execution role may read the password before the migration needs it.
# migrate.py --plan also refuses a CpuArchitecture the pushed images were not built for.
set -o errexit -o pipefail -o nounset
cd "$(dirname "$0")/../.."

stack_name=${ECS_STACK_NAME:-flask-stack}
python=${ECS_PYTHON:-.venv-deploy/bin/python}
# shellcheck source=deploy/pushed-images.sh
source deploy/pushed-images.sh
read -r -a user_parameters <<<"${ECS_PARAMETERS:-}"

if [[ ${ECS_REPOSITORIES_ONLY:-0} == 1 ]]; then
  web_image="" nginx_image=""
else
  web_image=$(pushed_image PUSHED_WEB_IMAGE)
  nginx_image=$(pushed_image PUSHED_NGINX_IMAGE)
  for image in "$web_image" "$nginx_image"; do
    if [[ -z $image ]]; then
      echo "ecs-deploy: no image digests in $pushed_images_file: run \`make push\` first" \
        "(or ECS_REPOSITORIES_ONLY=1 for the first deploy, which creates the repositories)" >&2
      exit 1
    fi
    if ! is_pinned "$image"; then
      echo "ecs-deploy: $image is not pinned by digest (<repository>@sha256:<64 hex>)" >&2
      exit 1
    fi
  done
fi

deploy=(
  aws cloudformation deploy
  --template-file deploy/ecs/template.yaml
  --stack-name "$stack_name"
  --capabilities CAPABILITY_IAM
  --no-fail-on-empty-changeset
  --parameter-overrides
)
run() {
  if [[ ${DRY_RUN:-0} == 1 ]]; then
    printf '%q ' "$@" | sed 's/ $//'
    echo
  else
    "$@"
  fi
}

migrations=none
if [[ ${ECS_REPOSITORIES_ONLY:-0} != 1 ]]; then
  migrations=$("$python" deploy/ecs/migrate.py --plan)
fi
if [[ $migrations == grant-first ]]; then
  echo "ecs-deploy: the database is new to the stack: its settings first, with the images already deployed" >&2
  # Without WebImage and NginxImage, the deploy keeps the values the stack has.
  run "${deploy[@]}" "${user_parameters[@]}"
  migrations=before
fi
if [[ $migrations == before ]]; then
  "$python" deploy/ecs/migrate.py
fi
run "${deploy[@]}" "WebImage=$web_image" "NginxImage=$nginx_image" "${user_parameters[@]}"
