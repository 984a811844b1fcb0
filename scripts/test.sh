#!/usr/bin/env bash
# ragctl's test command: prepare the machine (tests/setup.sh: Docker engine,
# dclint, local test images), then run every cargo test target. Extra
# arguments go to `cargo test`, e.g. scripts/test.sh -- --nocapture
#
#   RAGCTL_SKIP_SETUP=1  do not run tests/setup.sh (it already ran)
# Docker end-to-end tests never skip here: RAGCTL_E2E=1 is exported.
set -euo pipefail

REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$REPO_ROOT"

if [ "${RAGCTL_SKIP_SETUP:-0}" != 1 ]; then
  if [ "$(id -u)" = 0 ]; then
    tests/setup.sh >/dev/null
  else
    sudo -n tests/setup.sh >/dev/null
  fi
fi

export RAGCTL_E2E=1
export RAGCTL_DCLINT="${RAGCTL_DCLINT:-$REPO_ROOT/target/tools/node_modules/.bin/dclint}"

exec cargo test --all-targets --locked --no-fail-fast "$@"
