#!/usr/bin/env bash
# Prepare this machine for ragctl's test suite (Debian bookworm, run as root).
#
# Idempotent and non-interactive: every step checks first and only does work
# that is missing, so rerunning it is cheap. Steps:
#   1. Debian packages: docker.io docker-compose debootstrap, and the host
#      tools the end-to-end tests run: postgresql-client (psql), openssl and curl
#   2. a running Docker engine (dockerd started in the background if needed),
#      and a single-node swarm on it (docker swarm init, when inactive)
#   3. the compose linter dclint (npm) in target/tools/node_modules
#   3k. the Kubernetes validators kubernetes-validate and checkov (PyPI) in target/tools/venv
#   3p. promtool (Debian prometheus) and squid, which check the rendered Prometheus and ssrf_proxy configs
#   4. the local test images (tests/images/build.sh), then their contract
#      checks (tests/images/smoke.sh); setup fails when a check fails
#
# Environment:
#   RAGCTL_SETUP_SKIP_IMAGES=1   skip step 4
#   RAGCTL_DOCKERD_LOG=FILE      where a dockerd started here logs
#                                (default /tmp/ragctl-dockerd.log)
set -euo pipefail

REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$REPO_ROOT"

DCLINT_VERSION="3.1.0"
DOCKERD_LOG="${RAGCTL_DOCKERD_LOG:-/tmp/ragctl-dockerd.log}"
export DEBIAN_FRONTEND=noninteractive

log() { printf '[setup %(%H:%M:%S)T] %s\n' -1 "$*" >&2; }
die() { printf '[setup] ERROR: %s\n' "$*" >&2; exit 1; }

[ "$(id -u)" = 0 ] || die "must run as root"

# Serialise concurrent runs (e.g. several test binaries calling setup at once).
mkdir -p target
exec 9>target/.ragctl-setup.lock
flock 9

t0=$SECONDS

# --- 1. Debian packages -------------------------------------------------------
# A package counts as present when its commands are (so a host that has
# Docker from elsewhere, e.g. docker-ce, is left alone).
need_pkgs=()
{ command -v docker && command -v dockerd; } >/dev/null 2>&1 || need_pkgs+=(docker.io)
command -v docker-compose >/dev/null 2>&1 || need_pkgs+=(docker-compose)
command -v debootstrap >/dev/null 2>&1 || need_pkgs+=(debootstrap)
# debootstrap verifies the Debian archive with this keyring.
[ -f /usr/share/keyrings/debian-archive-keyring.gpg ] || need_pkgs+=(debian-archive-keyring)
# The end-to-end tests run these on the host (tests/e2e_engine.rs, e2e_swarm.rs, e2e_doctor_services.rs).
command -v psql >/dev/null 2>&1 || need_pkgs+=(postgresql-client)
command -v openssl >/dev/null 2>&1 || need_pkgs+=(openssl)
# tests/e2e_nginx.rs talks HTTPS to nginx with curl.
command -v curl >/dev/null 2>&1 || need_pkgs+=(curl)
if [ "${#need_pkgs[@]}" -gt 0 ]; then
  log "installing packages: ${need_pkgs[*]}"
  apt-get update -q
  apt-get install -y -q --no-install-recommends "${need_pkgs[@]}" </dev/null
else
  log "packages present: docker.io docker-compose debootstrap postgresql-client openssl curl"
fi

# --- 2. Docker engine ---------------------------------------------------------
if docker version >/dev/null 2>&1; then
  log "docker engine answering"
else
  command -v dockerd >/dev/null || die "dockerd not found after installing docker.io"
  log "starting dockerd in the background (log: $DOCKERD_LOG)"
  # setsid: keep dockerd out of our process group so it survives this script.
  setsid dockerd >>"$DOCKERD_LOG" 2>&1 </dev/null 9>&- &
  for _ in $(seq 1 60); do
    if docker version >/dev/null 2>&1; then break; fi
    sleep 1
  done
  if ! docker version >/dev/null 2>&1; then
    echo "----- last lines of $DOCKERD_LOG -----" >&2
    tail -n 40 "$DOCKERD_LOG" >&2 || true
    die "dockerd did not answer within 60 s"
  fi
  log "dockerd is up (server $(docker version --format '{{.Server.Version}}'))"
fi

# --- 2b. single-node swarm (for tests/e2e_swarm.rs) ---------------------------
# Left active afterwards: regular containers keep working on a swarm node.
swarm_state="$(docker info --format '{{.Swarm.LocalNodeState}}' 2>/dev/null || echo unknown)"
if [ "$swarm_state" = active ]; then
  log "swarm active"
elif [ "$swarm_state" = inactive ]; then
  log "initialising a single-node swarm (advertise 127.0.0.1)"
  docker swarm init --advertise-addr 127.0.0.1 >/dev/null
else
  die "swarm is in state '$swarm_state'; fix it (docker swarm leave --force) and rerun"
fi
# --- end single-node swarm ----------------------------------------------------

# --- 3. dclint ------------------------------------------------------------------
TOOLS_DIR="$REPO_ROOT/target/tools"
DCLINT="$TOOLS_DIR/node_modules/.bin/dclint"
dclint_version() {
  sed -n 's/^ *"version": *"\([^"]*\)".*/\1/p' "$TOOLS_DIR/node_modules/dclint/package.json" 2>/dev/null | head -n1
}
if [ -x "$DCLINT" ] && [ "$(dclint_version)" = "$DCLINT_VERSION" ]; then
  log "dclint $DCLINT_VERSION present"
else
  command -v node >/dev/null && command -v npm >/dev/null \
    || die "node and npm are required to install dclint (Node.js >= 20.19)"
  log "installing dclint@$DCLINT_VERSION into $TOOLS_DIR"
  mkdir -p "$TOOLS_DIR"
  [ -f "$TOOLS_DIR/package.json" ] || echo '{ "private": true }' >"$TOOLS_DIR/package.json"
  npm install --prefix "$TOOLS_DIR" --prefer-offline --no-audit --no-fund \
    --save-exact "dclint@$DCLINT_VERSION" </dev/null >&2
fi
# Must work offline: run it with no proxy and a bogus registry so any network
# attempt fails fast instead of silently succeeding.
if ! env npm_config_registry=http://127.0.0.1:9/ "$DCLINT" --help >/dev/null 2>&1; then
  die "'$DCLINT --help' failed"
fi
log "dclint: $DCLINT"
echo "$DCLINT"

# --- 3k. Kubernetes validators (kubernetes-validate, checkov) -------------------
# tests/kubernetes.rs runs them on every rendered manifest. A venv of their own keeps checkov's many pinned
# dependencies away from the system Python. The marker file records the installed pins, so a changed pin
# reinstalls and an unchanged one costs one `cat`.
K8S_VALIDATE_VERSION="1.37.0"
CHECKOV_VERSION="3.3.30"
K8S_VENV="$TOOLS_DIR/venv"
k8s_pins="kubernetes-validate==$K8S_VALIDATE_VERSION checkov==$CHECKOV_VERSION"
if [ -x "$K8S_VENV/bin/kubernetes-validate" ] && [ -x "$K8S_VENV/bin/checkov" ] \
  && [ "$(cat "$K8S_VENV/.ragctl-pins" 2>/dev/null)" = "$k8s_pins" ]; then
  log "kubernetes-validate $K8S_VALIDATE_VERSION and checkov $CHECKOV_VERSION present"
else
  command -v python3 >/dev/null || die "python3 (>= 3.9, with venv) is required for the Kubernetes validators"
  log "installing $k8s_pins into $K8S_VENV"
  k8s_t0=$SECONDS
  [ -x "$K8S_VENV/bin/python" ] || python3 -m venv "$K8S_VENV" \
    || die "python3 -m venv failed (Debian: apt-get install python3-venv)"
  "$K8S_VENV/bin/python" -m pip install -q --disable-pip-version-check $k8s_pins </dev/null >&2
  # Both run offline: the tests pass checkov --skip-download and BC_SKIP_MAPPING=TRUE (no platform lookups).
  # Checked once after installing: checkov takes seconds just to start.
  BC_SKIP_MAPPING=TRUE "$K8S_VENV/bin/checkov" --version >/dev/null \
    || die "'$K8S_VENV/bin/checkov --version' failed"
  "$K8S_VENV/bin/kubernetes-validate" --version >/dev/null \
    || die "'$K8S_VENV/bin/kubernetes-validate --version' failed"
  echo "$k8s_pins" >"$K8S_VENV/.ragctl-pins"
  log "Kubernetes validators installed in $((SECONDS - k8s_t0)) s"
fi
log "kubernetes-validate: $K8S_VENV/bin/kubernetes-validate; checkov: $K8S_VENV/bin/checkov"
# --- end of 3k ------------------------------------------------------------------

# --- 3p. promtool and squid (rendered config checks) ----------------------------------------------------
# tests/render_validation.rs and tests/monitoring_rules.rs run `promtool check`/`promtool test rules` and
# `squid -k parse` on rendered files. Only the binaries are used: the packages' services are never started
# (policy-rc.d denies it while they install; one is put in place only if the host has none).
cfg_pkgs=()
command -v promtool >/dev/null 2>&1 || cfg_pkgs+=(prometheus)
[ -x /usr/sbin/squid ] || cfg_pkgs+=(squid)
# apt-get install, with services kept from starting (a policy-rc.d of ours only while no other is present).
install_without_starting() {
  local own=0 rc=0
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d && chmod 755 /usr/sbin/policy-rc.d && own=1
  fi
  { apt-get update -q && apt-get install -y -q --no-install-recommends "$@" </dev/null; } || rc=$?
  [ "$own" = 0 ] || rm -f /usr/sbin/policy-rc.d
  return "$rc"
}
if [ "${#cfg_pkgs[@]}" -gt 0 ]; then
  log "installing packages: ${cfg_pkgs[*]}"
  install_without_starting "${cfg_pkgs[@]}" || die "installing ${cfg_pkgs[*]} failed"
fi
log "promtool: $(command -v promtool); squid: /usr/sbin/squid"
# --- end of 3p --------------------------------------------------------------------------------------------

# --- 4. test images -----------------------------------------------------------
if [ "${RAGCTL_SETUP_SKIP_IMAGES:-0}" = 1 ]; then
  log "skipping test images (RAGCTL_SETUP_SKIP_IMAGES=1)"
else
  "$REPO_ROOT/tests/images/build.sh"
  # The images stand in for registry images: check they still keep those images' contracts. Its report goes
  # to stderr, as stdout carries only the dclint path.
  log "checking the test images' contracts (tests/images/smoke.sh)"
  smoke_t0=$SECONDS
  "$REPO_ROOT/tests/images/smoke.sh" >&2 </dev/null || die "tests/images/smoke.sh failed: a test image breaks its contract"
  log "image contracts hold ($((SECONDS - smoke_t0)) s)"
fi

log "setup done in $((SECONDS - t0)) s"
