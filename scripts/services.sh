#!/usr/bin/env bash
# Makes sure the services the tests need answer, and tells how to reach them.
#
#   eval "$(scripts/services.sh)"     exports SKIFF_TEST_POSTGRES_URL, SKIFF_TEST_S3_ENDPOINT and
#                                     test AWS_* credentials in the calling shell
#   scripts/services.sh               prints the export lines (progress goes to stderr)
#
# S3: the server SKIFF_TEST_S3_ENDPOINT names is used if it answers (with a bucket skiff-test);
# else the one this script started earlier (its address is kept in $TMPDIR/skiff-s3-server.endpoint);
# else `moto[server]` (tests/requirements.txt) is installed into the test venv ($SKIFF_VENV,
# default ~/.cache/skiff-venv) if missing and scripts/s3_server.py serves it single-threaded on a
# free 127.0.0.1 port, in the background, left running for later runs. Never mocked.
#
# PostgreSQL: the server SKIFF_TEST_POSTGRES_URL names (default
# postgres://postgres@127.0.0.1:5432/postgres, trust auth) is used if `pg_isready` answers there.
# Otherwise Debian's `postgresql` package is installed if missing, its clusters are started with
# pg_ctlcluster, and if that still gives no server on that address, a throwaway server is
# initialised into a temporary directory (trust auth, a free port) and started. Never mocked.
# psql (postgresql-client) is installed too: the end-to-end tests use it.
set -euo pipefail

say() { printf '==> %s\n' "$*" >&2; }

as_root() {
    if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi
}

# --- S3 (moto_server) -----------------------------------------------------------------------------
s3_state=${TMPDIR:-/tmp}/skiff-s3-server.endpoint
s3_venv=${SKIFF_VENV:-$HOME/.cache/skiff-venv}
scripts_dir=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)

s3_answers() {
    python3 - "$1" <<'PY' >/dev/null 2>&1
import sys, urllib.request
urllib.request.urlopen(sys.argv[1].rstrip("/") + "/skiff-test", timeout=2).read()
PY
}

export_s3() {
    say "s3 answers at $1"
    printf 'export SKIFF_TEST_S3_ENDPOINT=%q\n' "$1"
    printf 'export AWS_ACCESS_KEY_ID=%q\n' "${AWS_ACCESS_KEY_ID:-test}"
    printf 'export AWS_SECRET_ACCESS_KEY=%q\n' "${AWS_SECRET_ACCESS_KEY:-test}"
    printf 'export AWS_REGION=%q\n' "${AWS_REGION:-us-east-1}"
}

start_s3() {
    if ! "$s3_venv/bin/python" -c 'import moto.moto_server' >/dev/null 2>&1; then
        if ! "$s3_venv/bin/python" -c 'import sys' >/dev/null 2>&1; then
            say "creating Python venv at $s3_venv"
            python3 -m venv "$s3_venv" >&2
        fi
        say "installing moto[server] into $s3_venv"
        "$s3_venv/bin/python" -m pip install --quiet --disable-pip-version-check \
            "$(grep -E '^moto' "$scripts_dir/../tests/requirements.txt" | cut -d' ' -f1)" >&2
    fi
    local port log
    port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
    log=${TMPDIR:-/tmp}/skiff-s3-server.$port.log
    say "starting moto_server (single-threaded) on 127.0.0.1:$port, log $log"
    # setsid + all streams redirected: it outlives this script and holds no pipe of the caller.
    setsid "$s3_venv/bin/python" "$scripts_dir/s3_server.py" "$port" </dev/null >"$log" 2>&1 &
    for _ in $(seq 1 100); do
        if s3_answers "http://127.0.0.1:$port"; then
            echo "http://127.0.0.1:$port" >"$s3_state"
            export_s3 "http://127.0.0.1:$port"
            return 0
        fi
        sleep 0.1
    done
    say "moto_server did not answer on port $port; see $log"
    return 1
}

if [ -n "${SKIFF_TEST_S3_ENDPOINT:-}" ] && s3_answers "$SKIFF_TEST_S3_ENDPOINT"; then
    export_s3 "$SKIFF_TEST_S3_ENDPOINT"
elif [ -s "$s3_state" ] && s3_answers "$(cat "$s3_state")"; then
    export_s3 "$(cat "$s3_state")"
else
    start_s3
fi

# --- PostgreSQL -----------------------------------------------------------------------------------
url=${SKIFF_TEST_POSTGRES_URL:-postgres://postgres@127.0.0.1:5432/postgres}
# host and port out of postgres://[user[:password]@]host[:port][/database][?options]
authority=${url#*://}
authority=${authority%%/*}
authority=${authority%%\?*}
hostport=${authority##*@}
host=${hostport%%:*}
port=5432
case "$hostport" in *:*) port=${hostport##*:} ;; esac

pg_bin() {
    local tool=$1 found
    found=$(command -v "$tool" 2>/dev/null || true)
    if [ -z "$found" ]; then
        found=$(ls -d /usr/lib/postgresql/*/bin/"$tool" 2>/dev/null | sort -V | tail -n 1 || true)
    fi
    printf '%s' "$found"
}

answers() {
    local isready
    isready=$(pg_bin pg_isready)
    [ -n "$isready" ] && "$isready" -q -h "$1" -p "$2" -t 3
}

export_url() {
    say "postgres answers at $1"
    printf 'export SKIFF_TEST_POSTGRES_URL=%q\n' "$1"
}

# psql: the end-to-end tests create and drop their databases with it.
if ! command -v psql >/dev/null 2>&1; then
    say "installing postgresql-client (Debian package)"
    as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq >&2
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
        postgresql-client >&2
fi

if answers "$host" "$port"; then
    export_url "$url"
    exit 0
fi

if [ -z "$(pg_bin initdb)" ]; then
    say "installing postgresql (Debian package)"
    as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq >&2
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
        postgresql >&2
fi

# Debian's own cluster first: it listens on 5432 with trust auth for local users by default.
if command -v pg_ctlcluster >/dev/null 2>&1 && [ "$port" = 5432 ]; then
    while read -r version cluster _; do
        say "starting cluster $version/$cluster"
        as_root pg_ctlcluster "$version" "$cluster" start >&2 || true
    done < <(pg_lsclusters -h 2>/dev/null || true)
    for _ in $(seq 1 20); do
        if answers "$host" "$port"; then
            # Debian's default pg_hba asks TCP clients for a password; the tests connect as
            # postgres without one, so trust loopback connections of this throwaway server.
            if ! psql -w "$url" -Atc 'SELECT 1' >/dev/null 2>&1; then
                say "Debian cluster answers but refuses $url; using a server of our own"
                break
            fi
            export_url "$url"
            exit 0
        fi
        sleep 0.5
    done
fi

# A server of our own: initdb into a temporary directory, trust auth, a free port.
free_port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
data_dir=$(mktemp -d /tmp/skiff-postgres.XXXXXX)
run_as=()
if [ "$(id -u)" -eq 0 ]; then
    # initdb and postgres refuse to run as root.
    id postgres >/dev/null 2>&1 || useradd --system --no-create-home postgres
    chown postgres "$data_dir"
    run_as=(runuser -u postgres --)
fi
say "initialising a postgres server in $data_dir on port $free_port"
"${run_as[@]}" "$(pg_bin initdb)" -D "$data_dir" -U postgres --auth=trust --no-sync >&2
"${run_as[@]}" "$(pg_bin pg_ctl)" -D "$data_dir" -l "$data_dir/server.log" -w \
    -o "-c listen_addresses=127.0.0.1 -c port=$free_port -c unix_socket_directories=$data_dir \
        -c max_connections=300 -c fsync=off" start >&2
export_url "postgres://postgres@127.0.0.1:$free_port/postgres"
