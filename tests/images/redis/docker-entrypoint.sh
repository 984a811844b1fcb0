#!/usr/bin/env bash
# Entrypoint for ragctl-test/redis:7, like the official redis image's:
#   docker run IMAGE                       -> redis-server
#   docker run IMAGE --requirepass X       -> redis-server --requirepass X
#   docker run IMAGE redis-server /x.conf  -> redis-server /x.conf
# redis-server is exec'd as the redis user (PID 1, gets the signals).
# The official image builds redis with protected-mode off by default; Debian's
# binary has it on, so "--protected-mode no" is added unless the arguments or
# the given config file set protected-mode themselves.
set -e

# first arg is `-f` or `--some-option`, or a config file
if [ "${1#-}" != "$1" ] || [ "${1%.conf}" != "$1" ]; then
  set -- redis-server "$@"
fi

if [ "$1" = 'redis-server' ]; then
  shift
  conf=()
  if [ $# -gt 0 ] && [ "${1#-}" = "$1" ]; then
    conf=("$1"); shift
  fi
  extra=()
  if ! printf '%s\n' "$@" | grep -q -- '--protected-mode' \
     && { [ ${#conf[@]} -eq 0 ] || ! grep -Eqi '^[[:space:]]*protected-mode' "${conf[0]}" 2>/dev/null; }; then
    extra=(--protected-mode no)
  fi
  set -- redis-server "${conf[@]}" "${extra[@]}" "$@"

  if [ "$(id -u)" = '0' ]; then
    find . \! -user redis -exec chown redis '{}' + 2>/dev/null || true
    # Match the official image's umask for persisted files.
    um="$(umask)"
    if [ "$um" = '0022' ]; then umask 0077; fi
    exec setpriv --reuid=redis --regid=redis --init-groups "$@"
  fi
fi

exec "$@"
