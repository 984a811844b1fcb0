#!/usr/bin/env bash
# Build the local Docker images that ragctl's end-to-end tests run.
# Nothing is pulled from a container registry: a Debian bookworm minbase root
# is made with debootstrap from this machine's own apt mirror, imported as
# ragctl-test/base:bookworm, and thin Dockerfiles build on it:
#
#   ragctl-test/postgres:15           PostgreSQL 15, official-image entrypoint contract
#   ragctl-test/pgvector:15           the postgres image plus Debian's pgvector built for PostgreSQL 15
#   ragctl-test/redis:7               redis-server (Debian's 7.0)
#   ragctl-test/nginx:1               nginx-light, foreground
#   ragctl-test/weaviate-standin:1    TEST STAND-IN, not Weaviate
#   ragctl-test/app-standin:1         TEST STAND-IN for the Dify api/worker/web/sandbox/plugin_daemon images
#   ragctl-test/squid:5               Debian squid, laid out like ubuntu/squid (ssrf_proxy)
#   ragctl-test/prometheus:2          Debian prometheus (+ exporters, alertmanager), like prom/prometheus
#   ragctl-test/postgres-exporter:0   Debian's postgres exporter (on the prometheus image)
#   ragctl-test/redis-exporter:1      Debian's redis exporter (on the prometheus image)
#   ragctl-test/blackbox-exporter:0   Debian's blackbox exporter (on the prometheus image)
#   ragctl-test/monitoring-standin:1  TEST STAND-IN for grafana and cadvisor (neither is in Debian)
#
# Each image carries LABEL org.ragctl.recipe=<sha256 of its recipe>; an image
# whose label matches the current recipe is not rebuilt. The root filesystem
# tarball is cached in target/test-images/rootfs.tar.
#
# Environment:
#   RAGCTL_DEBIAN_MIRROR   Debian mirror URL (default: read from /etc/apt sources)
#   RAGCTL_IMAGES_FORCE=1  rebuild everything, ignoring the recipe labels
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO_ROOT="$(cd "$HERE/../.." && pwd)"
CACHE="$REPO_ROOT/target/test-images"
BASE_IMAGE="ragctl-test/base:bookworm"
LABEL_KEY="org.ragctl.recipe"
# Image directory under tests/images -> image reference [-> the test image it builds on, listed before it;
# default the base image].
CHILDREN=(
  "postgres ragctl-test/postgres:15"
  "pgvector ragctl-test/pgvector:15 ragctl-test/postgres:15"
  "redis ragctl-test/redis:7"
  "nginx ragctl-test/nginx:1"
  "weaviate-standin ragctl-test/weaviate-standin:1"
  "app-standin ragctl-test/app-standin:1"
  "squid ragctl-test/squid:5"
  "prometheus ragctl-test/prometheus:2"
  "postgres-exporter ragctl-test/postgres-exporter:0 ragctl-test/prometheus:2"
  "redis-exporter ragctl-test/redis-exporter:1 ragctl-test/prometheus:2"
  "blackbox-exporter ragctl-test/blackbox-exporter:0 ragctl-test/prometheus:2"
  "monitoring-standin ragctl-test/monitoring-standin:1"
)

# The engine is 20.10; use the classic builder (no buildx/BuildKit needed).
export DOCKER_BUILDKIT=0

log() { printf '[images %(%H:%M:%S)T] %s\n' -1 "$*" >&2; }
die() { printf '[images] ERROR: %s\n' "$*" >&2; exit 1; }

[ "$(id -u)" = 0 ] || die "must run as root (debootstrap)"
docker version >/dev/null 2>&1 || die "docker engine not answering (run tests/setup.sh)"

mkdir -p "$CACHE"
exec 8>"$CACHE/.lock"
flock 8

# sha256 over file names and contents, in a stable order.
recipe_hash() {
  local f
  for f in "$@"; do
    printf '%s\0' "${f#"$HERE"/}"
    cat "$f"
  done | sha256sum | cut -d' ' -f1
}

image_label() {
  docker image inspect -f "{{index .Config.Labels \"$LABEL_KEY\"}}" "$1" 2>/dev/null || true
}

# First http(s)/ftp/file URI of a "deb" source for suite bookworm, from
# /etc/apt/sources.list, sources.list.d/*.list (one-line) and *.sources (deb822).
detect_mirror() {
  if [ -n "${RAGCTL_DEBIAN_MIRROR:-}" ]; then echo "$RAGCTL_DEBIAN_MIRROR"; return; fi
  local f files=()
  for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list /etc/apt/sources.list.d/*.sources; do
    [ -f "$f" ] && files+=("$f")
  done
  local uri=""
  for f in "${files[@]}"; do
    case "$f" in
      *.sources)
        uri="$(awk -v RS='' '
          {
            types=""; uris=""; suites=""; enabled="yes"
            n = split($0, lines, "\n")
            for (i = 1; i <= n; i++) {
              line = lines[i]
              if (line ~ /^[ \t]*#/) continue
              if (match(line, /^[A-Za-z-]+:/)) {
                key = tolower(substr(line, 1, RLENGTH - 1)); val = substr(line, RLENGTH + 1)
                if (key == "types") types = val
                else if (key == "uris") uris = val
                else if (key == "suites") suites = val
                else if (key == "enabled") enabled = val
              }
            }
            if (enabled ~ /no/) next
            if (types !~ /(^|[ \t])deb([ \t]|$)/) next
            if (suites !~ /(^|[ \t])bookworm([ \t]|$)/) next
            split(uris, u, /[ \t]+/)
            for (j in u) if (u[j] ~ /^(https?|ftp|file):/) { print u[j]; exit }
          }' "$f")"
        ;;
      *)
        uri="$(awk '
          $1 == "deb" {
            i = 2
            if ($i ~ /^\[/) { while (i <= NF && $i !~ /\]$/) i++; i++ }
            if ($(i+1) == "bookworm" && $i ~ /^(https?|ftp|file):/) { print $i; exit }
          }' "$f")"
        ;;
    esac
    if [ -n "$uri" ]; then echo "$uri"; return; fi
  done
  die "no 'deb ... bookworm' source in /etc/apt/sources.list{,.d/*.list,.d/*.sources}; set RAGCTL_DEBIAN_MIRROR"
}

t0=$SECONDS
force="${RAGCTL_IMAGES_FORCE:-0}"

# --- base image ---------------------------------------------------------------
base_hash="$(recipe_hash "$HERE/base/mkrootfs.sh" "$HERE/base/packages.txt")"
if [ "$force" != 1 ] && [ "$(image_label "$BASE_IMAGE")" = "$base_hash" ]; then
  log "$BASE_IMAGE up to date (${base_hash:0:12})"
else
  tarball="$CACHE/rootfs.tar"
  if [ "$force" = 1 ] || [ ! -f "$tarball" ] || [ "$(cat "$tarball.recipe" 2>/dev/null)" != "$base_hash" ]; then
    mirror="$(detect_mirror)"
    log "building rootfs (recipe ${base_hash:0:12}) from $mirror"
    rm -f "$tarball.recipe"
    "$HERE/base/mkrootfs.sh" "$mirror" "$CACHE/rootfs" "$tarball"
    echo "$base_hash" >"$tarball.recipe"
  else
    log "reusing cached rootfs $tarball"
  fi
  old_id="$(docker image inspect -f '{{.Id}}' "$BASE_IMAGE" 2>/dev/null || true)"
  log "importing $BASE_IMAGE"
  docker import \
    --change "LABEL $LABEL_KEY=$base_hash" \
    --change 'LABEL org.ragctl.test-image=true' \
    --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    --change 'ENV LANG=C.UTF-8' \
    --change 'CMD ["/bin/bash"]' \
    "$tarball" "$BASE_IMAGE" >/dev/null
  if [ -n "$old_id" ]; then docker rmi "$old_id" >/dev/null 2>&1 || true; fi
fi
base_id="$(docker image inspect -f '{{.Id}}' "$BASE_IMAGE")"

# --- images built on the base ---------------------------------------------------
for entry in "${CHILDREN[@]}"; do
  read -r dir ref parent <<<"$entry"
  ctx="$HERE/$dir"
  mapfile -t files < <(find "$ctx" -type f | LC_ALL=C sort)
  parent_id="$base_id"
  [ -z "$parent" ] || parent_id="$(docker image inspect -f '{{.Id}}' "$parent")"
  # The recipe includes this script and the exact image it builds on.
  hash="$( { echo "$parent_id"; recipe_hash "$HERE/build.sh" "${files[@]}"; } | sha256sum | cut -d' ' -f1)"
  if [ "$force" != 1 ] && [ "$(image_label "$ref")" = "$hash" ]; then
    log "$ref up to date (${hash:0:12})"
    continue
  fi
  log "building $ref (recipe ${hash:0:12})"
  old_id="$(docker image inspect -f '{{.Id}}' "$ref" 2>/dev/null || true)"
  docker build -q --label "$LABEL_KEY=$hash" -t "$ref" "$ctx" >/dev/null
  new_id="$(docker image inspect -f '{{.Id}}' "$ref")"
  if [ -n "$old_id" ] && [ "$old_id" != "$new_id" ]; then docker rmi "$old_id" >/dev/null 2>&1 || true; fi
done

log "test images ready in $((SECONDS - t0)) s"
