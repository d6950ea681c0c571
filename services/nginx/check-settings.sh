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
require_on_or_off NGINX_TLS "${NGINX_TLS:-}"
require_on_or_off NGINX_ACME "${NGINX_ACME:-}"

case "${NGINX_STATIC_FILES:-}" in
  image | mounted) ;;
  *)
    echo "check-settings: NGINX_STATIC_FILES must be image or mounted, got '${NGINX_STATIC_FILES:-}'" >&2
    exit 1
    ;;
esac
if [ "$NGINX_STATIC_FILES" = mounted ] && [ ! -d /usr/share/nginx/mounted/static ]; then
  echo "check-settings: NGINX_STATIC_FILES=mounted needs the app's static folder mounted at" \
    "/usr/share/nginx/mounted/static (compose.override.yaml does it)" >&2
  exit 1
fi

case "${NGINX_HTTPS_PUBLIC_PORT:-}" in
  "" | *[!0-9]*)
    echo "check-settings: NGINX_HTTPS_PUBLIC_PORT must be a port number, got '${NGINX_HTTPS_PUBLIC_PORT:-}'" >&2
    exit 1
    ;;
esac

# server_name takes names separated by spaces; anything else would break the config far
# from its cause (or, with a ';', end the directive early).
case "${NGINX_SERVER_NAMES:-}" in
  "" | *[!A-Za-z0-9.*\ -]*)
    echo "check-settings: NGINX_SERVER_NAMES must be host names separated by spaces, got '${NGINX_SERVER_NAMES:-}'" >&2
    exit 1
    ;;
esac

if [ "$NGINX_ACME" = on ] && [ ! -d /usr/share/nginx/acme ]; then
  echo "check-settings: NGINX_ACME=on needs the ACME challenges' volume mounted at" \
    "/usr/share/nginx/acme (compose.acme.yaml does it)" >&2
  exit 1
fi

if [ "$NGINX_TLS" = on ]; then
  for file in /etc/nginx/tls/tls.crt /etc/nginx/tls/tls.key; do
    if [ ! -r "$file" ]; then
      echo "check-settings: NGINX_TLS=on needs $file, readable by uid $(id -u) (mount a directory" \
        "holding tls.crt and tls.key at /etc/nginx/tls; make certs makes one for development)" >&2
      exit 1
    fi
  done
fi
