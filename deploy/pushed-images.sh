# shellcheck shell=bash
# Sourced by deploy/ecs/deploy.sh and deploy/swarm/deploy.sh: reading what `make push`
# recorded, one way for both.
#   PUSHED_IMAGES_FILE  the digests (default deploy/pushed-images.env)

pushed_images_file=${PUSHED_IMAGES_FILE:-deploy/pushed-images.env}

# The image recorded under KEY: the environment's value wins over the file's. The file
# is read as data, never sourced.
pushed_image() {
  if [[ -n ${!1:-} ]]; then
    printf '%s\n' "${!1}"
  elif [[ -f $pushed_images_file ]]; then
    sed -n "s/^[[:space:]]*$1=//p" "$pushed_images_file" | tail -n 1
  fi
}

# True when REFERENCE names an image by digest (<repository>@sha256:<64 hex>).
is_pinned() {
  [[ $1 =~ ^[^@[:space:]]+@sha256:[0-9a-f]{64}$ ]]
}
