#!/bin/bash
# Entrypoint of ragctl-test/squid:5 (test image): as ubuntu/squid does, create the cache directories the
# configuration names (squid -z) and then run squid in the foreground with the given arguments.
set -euo pipefail
conf=/etc/squid/squid.conf
args=("$@")
for ((i = 0; i < ${#args[@]}; i++)); do
  if [ "${args[$i]}" = "-f" ] && [ $((i + 1)) -lt ${#args[@]} ]; then conf="${args[$((i + 1))]}"; fi
done
# Access and cache logs to stdout unless the configuration says otherwise.
ln -sf /dev/stdout /var/log/squid/access.log 2>/dev/null || true
ln -sf /dev/stdout /var/log/squid/cache.log 2>/dev/null || true
rm -f /run/squid.pid /run/squid/squid.pid
if grep -qE '^[[:space:]]*cache_dir' "$conf"; then squid -f "$conf" -z -N; fi
exec squid "${args[@]}"
