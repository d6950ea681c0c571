#!/bin/sh
# Entrypoint of the nginx stand-in (CI only). Like the official image's, when the command
# is nginx it takes the executable files of /docker-entrypoint.d in order, sourcing each
# *.envsh (so the variables it exports reach what follows) and running each *.sh, then
# renders /etc/nginx/templates/*.template into $NGINX_ENVSUBST_OUTPUT_DIR, substituting
# only variables defined in the environment (nginx's own $vars stay).
set -eu

if [ "${1:-}" = nginx ] || [ "${1:-}" = nginx-debug ]; then
  for script in /docker-entrypoint.d/*; do
    [ -x "$script" ] || continue
    case "$script" in
      *.envsh)
        # shellcheck disable=SC1090 # the image's own scripts, known only at run time
        . "$script"
        ;;
      *.sh) "$script" ;;
    esac
  done
  template_dir=${NGINX_ENVSUBST_TEMPLATE_DIR:-/etc/nginx/templates}
  output_dir=${NGINX_ENVSUBST_OUTPUT_DIR:-/etc/nginx/conf.d}
  suffix=${NGINX_ENVSUBST_TEMPLATE_SUFFIX:-.template}
  if [ -d "$template_dir" ]; then
    defined=$(env | sed -n 's/^\([A-Za-z_][A-Za-z0-9_]*\)=.*/${\1}/p' | tr '\n' ' ')
    find "$template_dir" -type f -name "*$suffix" | while read -r template; do
      relative=${template#"$template_dir"/}
      target="$output_dir/${relative%"$suffix"}"
      mkdir -p "$(dirname "$target")"
      envsubst "$defined" <"$template" >"$target"
    done
  fi
fi
exec "$@"
