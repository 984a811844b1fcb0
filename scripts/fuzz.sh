#!/usr/bin/env bash
# Run every cargo-fuzz target in fuzz/ for a bounded time, each starting from its committed seeds
# (fuzz/corpus/<target>/seed-*) copied to a scratch directory, so the checkout stays as it was.
#
#   scripts/fuzz.sh [SECONDS]    seconds per target (default 60)
#
# Needs a nightly toolchain (rustup toolchain install nightly). cargo-fuzz is installed from crates.io when
# missing (cargo install cargo-fuzz --locked). Without a nightly toolchain nothing is fuzzed: the script says so
# and exits 0, or fails under CI=true. A crash fails the script and leaves its input in fuzz/artifacts/<target>/.
#
#   RAGCTL_FUZZ_TARGET_DIR   where the instrumented build goes (default ~/.cache/ragctl/fuzz-target): outside the
#                            checkout so a fresh clone reuses the dependencies built before (a cold build of
#                            ragctl's dependencies with sanitizer instrumentation takes ~15 CPU-minutes here)
#
# Targets are built with --dev (no optimisation, debug assertions on): building ragctl itself instrumented takes
# ~2 CPU-minutes that way against ~6 in release mode, and a minute of unoptimised fuzzing still runs thousands of
# inputs per target. For long runs by hand use cargo fuzz directly (README "Fuzzing").
set -euo pipefail

REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$REPO_ROOT/fuzz"

seconds="${1:-60}"
[[ "$seconds" =~ ^[1-9][0-9]*$ ]] || { echo "usage: scripts/fuzz.sh [SECONDS]" >&2; exit 2; }

log() { printf '[fuzz %(%H:%M:%S)T] %s\n' -1 "$*" >&2; }
die() { printf '[fuzz] ERROR: %s\n' "$*" >&2; exit 1; }
cannot_fuzz() {
  if [ "${CI:-}" = true ] || [ "${CI:-}" = 1 ]; then
    die "cannot fuzz: $*; CI=true forbids skipping"
  fi
  log "NOT FUZZING: $*"
  exit 0
}

cargo +nightly --version >/dev/null 2>&1 || cannot_fuzz "no nightly toolchain (rustup toolchain install nightly)"

if cargo fuzz --version >/dev/null 2>&1; then
  log "$(cargo fuzz --version) present"
else
  log "installing cargo-fuzz from crates.io (cargo install cargo-fuzz --locked)"
  t0=$SECONDS
  cargo install cargo-fuzz --locked </dev/null
  log "cargo-fuzz installed in $((SECONDS - t0)) s"
fi

t0=$SECONDS
target_dir="${RAGCTL_FUZZ_TARGET_DIR:-${HOME:-/root}/.cache/ragctl/fuzz-target}"
mkdir -p "$target_dir"
cargo +nightly fuzz build --dev --target-dir "$target_dir" </dev/null
log "fuzz targets built in $((SECONDS - t0)) s"

scratch="$(mktemp -d)"
trap 'rm -rf "$scratch"' EXIT
mapfile -t targets < <(cargo +nightly fuzz list)
[ "${#targets[@]}" -gt 0 ] || die "cargo fuzz list names no target"
for target in "${targets[@]}"; do
  seeds=(corpus/"$target"/seed-*)
  [ -f "${seeds[0]}" ] || die "no seeds for $target: add fuzz/corpus/$target/seed-* files"
  mkdir "$scratch/$target"
  cp "${seeds[@]}" "$scratch/$target/"
  log "fuzzing $target for $seconds s from ${#seeds[@]} seeds"
  t0=$SECONDS
  # libFuzzer reports every new coverage point; keep that in a log and show it only when the run fails.
  if cargo +nightly fuzz run --dev --target-dir "$target_dir" "$target" "$scratch/$target" -- -max_total_time="$seconds" \
    </dev/null >"$scratch/$target.log" 2>&1; then
    log "$target: $(grep -E '^Done [0-9]+ runs' "$scratch/$target.log" || echo 'done'), corpus now $(find "$scratch/$target" -type f | wc -l) inputs ($((SECONDS - t0)) s)"
  else
    tail -n 80 "$scratch/$target.log" >&2
    die "$target failed: the input that broke it is in fuzz/artifacts/$target/ (reproduce: cd fuzz && cargo +nightly fuzz run --dev --target-dir $target_dir $target artifacts/$target/<file>)"
  fi
done
