#!/usr/bin/env bash
# Builds the cargo-fuzz targets in fuzz/ and runs each for a bounded time, starting from the
# committed seed corpus (fuzz/corpus/<target>). A crash, a timeout, or a single allocation
# beyond 512 MiB (an input-sized allocation gone wrong) fails the run; libFuzzer leaves the
# input in fuzz/artifacts/<target>/. scripts/test.sh runs this (30 s per target); run it by hand
# for longer:
#
#   scripts/fuzz.sh                  every target, SKIFF_FUZZ_SECONDS (default 30) each
#   scripts/fuzz.sh request 600      one target for 10 minutes
#
# Environment: SKIFF_FUZZ_TARGET_DIR (default ~/.cache/skiff-fuzz-target, kept between runs),
# SKIFF_FUZZ_SECONDS. New inputs found go to a scratch directory, not into the repository.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

targets=${1:-"request record_batch schema_text schema_payload s3_head registry_request sasl_messages"}
seconds=${2:-${SKIFF_FUZZ_SECONDS:-30}}
target_dir=${SKIFF_FUZZ_TARGET_DIR:-$HOME/.cache/skiff-fuzz-target}

if ! cargo fuzz --version >/dev/null 2>&1; then
    echo "==> cargo install cargo-fuzz" >&2
    cargo install cargo-fuzz --locked
fi

# cargo-fuzz passes nightly-only flags (-Zsanitizer=address); RUSTC_BOOTSTRAP lets the one
# stable toolchain these machines have take them.
export RUSTC_BOOTSTRAP=1
cd fuzz
echo "==> cargo fuzz build (target dir $target_dir)" >&2
cargo fuzz build --target-dir "$target_dir"

scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
for target in $targets; do
    echo "==> fuzzing $target for $seconds s" >&2
    mkdir -p "$scratch/$target"
    log="$scratch/$target.log"
    status=0
    cargo fuzz run --target-dir "$target_dir" "$target" "$scratch/$target" "corpus/$target" -- \
        -max_total_time="$seconds" -timeout=10 -malloc_limit_mb=512 -rss_limit_mb=2048 \
        -print_final_stats=1 >"$log" 2>&1 || status=$?
    grep -E '^stat::(number_of_executed_units|new_units_added|peak_rss_mb)' "$log" >&2 || true
    if [ "$status" -ne 0 ]; then
        tail -n 60 "$log" >&2
        echo "fuzz target $target failed (status $status): the input is in fuzz/artifacts/$target" >&2
        exit 1
    fi
done
