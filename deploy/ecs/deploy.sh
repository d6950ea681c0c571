#!/usr/bin/env bash
# Deploys deploy/ecs/template.yaml with the image digests `make push` recorded (make ecs-deploy).
#   ECS_STACK_NAME         the stack (default flask-stack)
#   ECS_PARAMETERS         the other parameters, "CertificateArn=... VpcId=... VpcCidr=..."
#   PUSHED_IMAGES_FILE     where the digests are (default deploy/pushed-images.env);
#                          PUSHED_WEB_IMAGE / PUSHED_NGINX_IMAGE in the environment win
#   ECS_REPOSITORIES_ONLY  1: deploy with empty images, creating only the ECR repositories
#                          (the first deploy, before the first push)
#   DRY_RUN                1: print the command instead of running it
set -o errexit -o pipefail -o nounset
cd "$(dirname "$0")/../.."

stack_name=${ECS_STACK_NAME:-flask-stack}
images_file=${PUSHED_IMAGES_FILE:-deploy/pushed-images.env}
read -r -a user_parameters <<<"${ECS_PARAMETERS:-}"

# The value of KEY in the images file (never sourced: it is data, not a script).
from_images_file() {
  [[ -f $images_file ]] || return 0
  sed -n "s/^[[:space:]]*$1=//p" "$images_file" | tail -n 1
}

if [[ ${ECS_REPOSITORIES_ONLY:-0} == 1 ]]; then
  web_image="" nginx_image=""
else
  web_image=${PUSHED_WEB_IMAGE:-$(from_images_file PUSHED_WEB_IMAGE)}
  nginx_image=${PUSHED_NGINX_IMAGE:-$(from_images_file PUSHED_NGINX_IMAGE)}
  pinned='^[^@[:space:]]+@sha256:[0-9a-f]{64}$'
  for image in "$web_image" "$nginx_image"; do
    if [[ -z $image ]]; then
      echo "ecs-deploy: no image digests in $images_file: run \`make push\` first" \
        "(or ECS_REPOSITORIES_ONLY=1 for the first deploy, which creates the repositories)" >&2
      exit 1
    fi
    if [[ ! $image =~ $pinned ]]; then
      echo "ecs-deploy: $image is not pinned by digest (<repository>@sha256:<64 hex>)" >&2
      exit 1
    fi
  done
fi

command=(
  aws cloudformation deploy
  --template-file deploy/ecs/template.yaml
  --stack-name "$stack_name"
  --capabilities CAPABILITY_IAM
  --no-fail-on-empty-changeset
  --parameter-overrides "WebImage=$web_image" "NginxImage=$nginx_image" "${user_parameters[@]}"
)
if [[ ${DRY_RUN:-0} == 1 ]]; then
  printf '%q ' "${command[@]}" | sed 's/ $//'
  echo
else
  exec "${command[@]}"
fi
