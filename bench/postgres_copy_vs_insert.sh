#!/usr/bin/env bash
# COPY against one INSERT per record, through the whole broker: the same confluent-kafka
# workload (bench/produce_consume.py: N x 100-byte records into one partition, acks=all) against
# two release builds of `skiff` that differ only in how the Postgres engine writes records. The
# INSERT build uses feature `skiff-storage-postgres/bench-insert`, which exists for this script
# alone. Figures go in docs/performance.md.
#
#   bench/postgres_copy_vs_insert.sh [RECORDS] [RUNS]      default 200000 records, 3 runs
#
# Environment: CARGO_TARGET_DIR (respected), SKIFF_VENV (default ~/.cache/skiff-venv),
# SKIFF_TEST_POSTGRES_URL (the server; scripts/services.sh provides one).
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
records=${1:-200000}
runs=${2:-3}
venv=${SKIFF_VENV:-$HOME/.cache/skiff-venv}
target=${CARGO_TARGET_DIR:-target}

if ! "$venv/bin/python" -c 'import confluent_kafka' >/dev/null 2>&1; then
    python3 -m venv "$venv"
    "$venv/bin/python" -m pip install --quiet -r bench/requirements.txt
fi
eval "$(scripts/services.sh)"
server=${SKIFF_TEST_POSTGRES_URL%/*}

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
echo "==> building the COPY (shipped) and INSERT (benchmark-only) brokers" >&2
cargo build --release -p skiff-cli
cp "$target/release/skiff" "$work/skiff-copy"
cargo build --release -p skiff-cli --features skiff-storage-postgres/bench-insert
cp "$target/release/skiff" "$work/skiff-insert"

free_port() {
    "$venv/bin/python" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

wait_ready() {
    "$venv/bin/python" - "$1" <<'PY'
import socket, sys, time
deadline = time.time() + 30
while time.time() < deadline:
    try:
        socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=1).close()
        sys.exit(0)
    except OSError:
        time.sleep(0.05)
sys.exit("broker did not listen")
PY
}

for run in $(seq 1 "$runs"); do
    for variant in copy insert; do
        database="skiff_bench_${variant}_$$_${run}"
        psql -w "$SKIFF_TEST_POSTGRES_URL" -qAtc "CREATE DATABASE $database"
        port=$(free_port)
        SKIFF_LOG=warn "$work/skiff-$variant" broker --listen "127.0.0.1:$port" \
            --advertised-listener "127.0.0.1:$port" --storage "$server/$database" &
        broker=$!
        wait_ready "$port"
        echo "--- run $run, $variant"
        "$venv/bin/python" bench/produce_consume.py "127.0.0.1:$port" "$records" "bench-$variant"
        kill "$broker"
        wait "$broker" || true
        psql -w "$SKIFF_TEST_POSTGRES_URL" -qAtc "DROP DATABASE $database WITH (FORCE)"
    done
done
