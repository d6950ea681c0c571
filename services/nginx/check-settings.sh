#!/bin/sh
# Refuse to start with a switch nginx's config could only misread. Runs from
# /docker-entrypoint.d before the templates are rendered.
set -eu

require_on_or_off() {
  case "$2" in
    on | off) ;;
    *)
      echo "check-settings: $1 must be on or off, got '$2'" >&2
      exit 1
      ;;
  esac
}

require_on_or_off NGINX_LIMITS "${NGINX_LIMITS:-}"
require_on_or_off NGINX_TRUST_FORWARDED_PROTO "${NGINX_TRUST_FORWARDED_PROTO:-}"
