#!/bin/bash
# Entrypoint of ragctl-test/squid:5 (test image): as ubuntu/squid does, create the cache directories the
# configuration names (squid -z) and then run squid in the foreground with the given arguments.
set -euo pipefail
conf=/etc/squid/squid.conf
args=("$@")
for ((i = 0; i < ${#args[@]}; i++)); do
  if [ "${args[$i]}" = "-f" ] && [ $((i + 1)) -lt ${#args[@]} ]; then conf="${args[$((i + 1))]}"; fi
done
# Logs stay files in /var/log/squid, as in ubuntu/squid: squid's log daemon runs as the proxy user, which cannot
# open the container's /dev/stdout (ENXIO), and squid exits on the first write to a dead log daemon.
rm -f /run/squid.pid /run/squid/squid.pid
if grep -qE '^[[:space:]]*cache_dir' "$conf"; then squid -f "$conf" -z -N; fi
exec squid "${args[@]}"
