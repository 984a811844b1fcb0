#!/usr/bin/env bash
# Entrypoint for ragctl-test/nginx:1. Like the official image: when the
# command is nginx, render /etc/nginx/templates/*.template into
# /etc/nginx/conf.d/ with envsubst (only variables defined in the
# environment are substituted), then exec the command.
#   NGINX_ENVSUBST_TEMPLATE_DIR     (default /etc/nginx/templates)
#   NGINX_ENVSUBST_TEMPLATE_SUFFIX  (default .template)
#   NGINX_ENVSUBST_OUTPUT_DIR       (default /etc/nginx/conf.d)
set -e

if [ "$1" = nginx ] || [ "$1" = nginx-debug ]; then
  tdir="${NGINX_ENVSUBST_TEMPLATE_DIR:-/etc/nginx/templates}"
  suffix="${NGINX_ENVSUBST_TEMPLATE_SUFFIX:-.template}"
  odir="${NGINX_ENVSUBST_OUTPUT_DIR:-/etc/nginx/conf.d}"
  if [ -d "$tdir" ]; then
    # Only variables set in the environment are substituted; other $vars
    # (nginx's own, like $host) are left alone.
    # shellcheck disable=SC2016,SC2046  # literal ${NAME}; names are one word each
    defined="$(printf '${%s} ' $(awk 'END { for (n in ENVIRON) if (n ~ /^[A-Za-z_][A-Za-z0-9_]*$/) print n }' </dev/null))"
    # Command substitution (not process substitution) so find is reaped
    # before exec: a leftover child would become a zombie under nginx.
    while IFS= read -r t; do
      [ -n "$t" ] || continue
      rel="${t#"$tdir"/}"
      out="$odir/${rel%"$suffix"}"
      mkdir -p "$(dirname "$out")"
      echo "$0: rendering $t -> $out" >&2
      envsubst "$defined" <"$t" >"$out"
    done <<<"$(find "$tdir" -follow -type f -name "*$suffix" -print)"
  fi
fi

exec "$@"
