#!/bin/sh
# Prints the default a Dockerfile gives a build ARG, such as the base image tag:
#   scripts/dockerfile-arg.sh services/web/Dockerfile PYTHON_IMAGE   (prints the tag it names)
# Each base image's tag is written once, as its Dockerfile's ARG default; the scripts that
# need the tag (build-base-images.sh, doctor.sh, lock-requirements.sh, bench/run.sh) read it here.
set -eu
dockerfile=${1:?usage: dockerfile-arg.sh DOCKERFILE ARG}
name=${2:?usage: dockerfile-arg.sh DOCKERFILE ARG}
value=$(sed -n "s/^ARG ${name}=//p" "$dockerfile" | head -n 1)
if [ -z "$value" ]; then
  echo "dockerfile-arg: $dockerfile gives ARG $name no default" >&2
  exit 1
fi
printf '%s\n' "$value"
