#!/usr/bin/env bash
# Builds the release `skiff` binary and runs bench/bench.py against it (docs/performance.md).
#
#   bench/run.sh                                   both engines, 200,000 x 100 B, 1 partition
#   bench/run.sh --engine memory --records 1000000 --json bench.json
#   bench/run.sh --help                            every option
#   bench/run.sh proxy                             skiff proxy vs direct, side by side
#   bench/run.sh proxy --help                      its options (bench/proxy_bench.py)
#   bench/run.sh rebalance --engine postgres       consumer-group convergence, classic and KIP-848 (bench/rebalance_bench.py)
#   bench/run.sh validation                        produce with schema validation (bench/validation_bench.py)
#   bench/run.sh --engine memory --metrics         brokers with --metrics-listen (its cost: docs/performance.md)
#   bench/run.sh tls                               produce and consume over TLS vs plaintext (bench/tls_bench.py)
#   bench/run.sh sasl                              SASL_SSL, with and without ACLs, vs plaintext; handshakes/s (bench/sasl_bench.py)
#   bench/run.sh cold-start                        socket-activated cold starts (bench/cold_start.py)
#   bench/run.sh tables                            topics written as Parquet tables (bench/table_bench.py)
#
# Arguments go to bench.py. Environment: CARGO_TARGET_DIR (respected; the binary is
# $CARGO_TARGET_DIR/release/skiff, else target/release/skiff), SKIFF_VENV (default
# ~/.cache/skiff-venv, the venv scripts/test.sh uses), PYTHON (default python3),
# SKIFF_BENCH_NO_BUILD=1 to measure the binary as it is.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

python=${PYTHON:-python3}
venv=${SKIFF_VENV:-$HOME/.cache/skiff-venv}
requirements=bench/requirements.txt
stamp="$venv/.skiff-bench-requirements.sha256"
want_stamp=$( { sha256sum "$requirements" | cut -d' ' -f1; "$python" -c 'import sys; print(sys.version)'; } | sha256sum | cut -d' ' -f1)

if ! "$venv/bin/python" -c 'import sys' >/dev/null 2>&1; then
    echo "==> creating Python venv at $venv" >&2
    rm -rf "$venv"
    "$python" -m venv "$venv"
fi
if [ "$(cat "$stamp" 2>/dev/null || true)" != "$want_stamp" ] \
    || ! "$venv/bin/python" -c 'import confluent_kafka' >/dev/null 2>&1; then
    echo "==> installing $requirements into $venv" >&2
    "$venv/bin/python" -m pip install --quiet --disable-pip-version-check --upgrade -r "$requirements"
    echo "$want_stamp" >"$stamp"
fi

if [ "${SKIFF_BENCH_NO_BUILD:-0}" != 1 ]; then
    echo "==> cargo build --release -p skiff-cli" >&2
    cargo build --release -p skiff-cli
fi

# bench.py finds $CARGO_TARGET_DIR/release/skiff (relative paths from the repository root, as
# cargo resolves them here) or target/release/skiff by itself; --binary overrides.
case "${1:-}" in
    cold-start) tool=cold_start.py ;;
    tls) tool=tls_bench.py ;;
    sasl) tool=sasl_bench.py ;;
    validation) tool=validation_bench.py ;;
    tables) tool=table_bench.py ;;
    rebalance) tool=rebalance_bench.py ;;
    proxy) tool=proxy_bench.py ;;
    *) tool=bench.py ;;
esac
[ "$tool" = bench.py ] || shift
exec "$venv/bin/python" "bench/$tool" "$@"
