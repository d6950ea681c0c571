#!/bin/sh
# Refuse to start with a switch nginx's config could only misread. Runs from
# /docker-entrypoint.d before the templates are rendered.
set -eu

for name in NGINX_LIMITS NGINX_TRUST_FORWARDED_PROTO; do
  eval "value=\${$name:-}"
  case "$value" in
    on | off) ;;
    *)
      echo "check-settings: $name must be on or off, got '$value'" >&2
      exit 1
      ;;
  esac
done
