#!/usr/bin/env bash
# The one test command (README): installs what the tests need on a fresh Debian machine, builds,
# runs the Rust tests, then the end-to-end suite against the real `skiff` binary.
#
#   scripts/test.sh                 everything
#   scripts/test.sh -k codec -x     extra arguments go to pytest
#
# Environment: CARGO_TARGET_DIR (respected), SKIFF_VENV (default ~/.cache/skiff-venv),
# SKIFF_BIN (default: the binary this script builds), SKIFF_STATIC_BIN (default: the one
# scripts/build-static.sh builds, in SKIFF_STATIC_TARGET_DIR), PYTHON (default python3),
# SKIFF_E2E_LOG (the brokers' log filter in e2e tests, default info), SKIFF_TEST_POSTGRES_URL
# (the Postgres server tests create their databases on) and SKIFF_TEST_S3_ENDPOINT (the S3 server,
# moto, with the bucket skiff-test); scripts/services.sh provides both.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
repo_root=$(pwd)

step() { printf '\n==> %s\n' "$*"; }

as_root() {
    if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi
}

apt_updated=0
apt_install() {
    if [ "$apt_updated" -eq 0 ]; then
        as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq
        apt_updated=1
    fi
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@"
}

# --- Tools ----------------------------------------------------------------------------------------
if ! command -v kcat >/dev/null 2>&1; then
    step "installing kcat"
    apt_install kcat
fi
if ! command -v openssl >/dev/null 2>&1; then  # test certificates for Postgres over TLS
    step "installing openssl"
    apt_install openssl
fi
# librdkafka's mock cluster (rdkafka_mock.h) is the multi-broker upstream of the proxy tests.
if [ ! -f /usr/include/librdkafka/rdkafka_mock.h ] || ! command -v cc >/dev/null 2>&1; then
    step "installing librdkafka-dev and a C compiler"
    apt_install librdkafka-dev gcc libc6-dev
fi

# kafkajs (tests/e2e/test_kafkajs.py) runs on node, from the package in tests/e2e/js.
if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
    step "installing nodejs and npm"
    apt_install nodejs npm
fi

# The static binary's test (tests/e2e/test_static_binary.py) inspects it with file and readelf.
if ! command -v file >/dev/null 2>&1 || ! command -v readelf >/dev/null 2>&1; then
    step "installing file and binutils"
    apt_install file binutils
fi

# systemd-socket-activate starts brokers on the first connection in the scale-to-zero tests.
if ! command -v systemd-socket-activate >/dev/null 2>&1; then
    step "installing systemd (systemd-socket-activate)"
    apt_install systemd
fi

python=${PYTHON:-python3}
venv=${SKIFF_VENV:-$HOME/.cache/skiff-venv}
requirements=tests/requirements.txt
stamp="$venv/.skiff-requirements.sha256"
want_stamp=$( { sha256sum "$requirements" | cut -d' ' -f1; "$python" -c 'import sys; print(sys.version)'; } | sha256sum | cut -d' ' -f1)

if ! "$venv/bin/python" -c 'import sys' >/dev/null 2>&1; then
    step "creating Python venv at $venv"
    rm -rf "$venv"
    if ! "$python" -m venv "$venv" >/dev/null 2>&1; then
        apt_install python3-venv
        rm -rf "$venv"
        "$python" -m venv "$venv"
    fi
fi
if [ "$(cat "$stamp" 2>/dev/null || true)" != "$want_stamp" ]; then
    step "installing $requirements into $venv"
    "$venv/bin/python" -m pip install --quiet --disable-pip-version-check --upgrade -r "$requirements"
    echo "$want_stamp" >"$stamp"
fi

js_dir=tests/e2e/js
js_stamp="$js_dir/node_modules/.skiff-package-lock.sha256"
js_want=$(sha256sum "$js_dir/package-lock.json" | cut -d' ' -f1)
if [ "$(cat "$js_stamp" 2>/dev/null || true)" != "$js_want" ]; then
    step "npm ci in $js_dir"
    (cd "$js_dir" && npm ci --no-audit --no-fund --loglevel=error)
    echo "$js_want" >"$js_stamp"
fi

# --- Services the tests need (PostgreSQL and an S3 server; exports their addresses) -------------
step "scripts/services.sh"
eval "$(scripts/services.sh)"

# --- Build and Rust tests -------------------------------------------------------------------------
target_dir=${CARGO_TARGET_DIR:-target}
case "$target_dir" in
    /*) ;;
    *) target_dir="$repo_root/$target_dir" ;;
esac

step "cargo build -p skiff-cli"
cargo build -p skiff-cli

if cargo nextest --version >/dev/null 2>&1; then
    step "cargo nextest run --workspace"
    cargo nextest run --workspace --no-tests=warn
    step "cargo test --workspace --doc"
    cargo test --workspace --doc
else
    step "cargo test --workspace"
    cargo test --workspace
fi

# --- Fuzzing ---------------------------------------------------------------------------------------
# Every decoder of network input, 30 s per target from the committed seed corpus (a release
# build with AddressSanitizer of its own, in ~/.cache/skiff-fuzz-target; ~10 min cold).
step "scripts/fuzz.sh"
scripts/fuzz.sh

# --- The static binary -----------------------------------------------------------------------------
# A release build of its own (~15 min cold on 2 cores, in a target directory kept between runs);
# tests/e2e/test_static_binary.py runs it in an empty root. SKIFF_STATIC_BIN skips the build.
if [ -z "${SKIFF_STATIC_BIN:-}" ]; then
    step "scripts/build-static.sh"
    SKIFF_STATIC_BIN=$(scripts/build-static.sh)
fi
export SKIFF_STATIC_BIN

# --- End-to-end tests -----------------------------------------------------------------------------
export SKIFF_BIN=${SKIFF_BIN:-$target_dir/debug/skiff}
step "pytest tests/e2e (SKIFF_BIN=$SKIFF_BIN)"
"$venv/bin/python" -m pytest tests/e2e -p no:cacheprovider -q -rfEs --tb=short \
    --junitxml="$target_dir/e2e-junit.xml" "$@"

# --- Kill soak -------------------------------------------------------------------------------------
# The history checker fed bad histories (tests/soak/test_checker.py), then the soak's short form
# (tests/soak/test_soak.py: three brokers on Postgres and on S3, producers, transactions and a
# group, brokers killed with kill -9 and the storage stalled, the whole history checked;
# SKIFF_SOAK_SECONDS per engine, default 40). Histories are kept in SKIFF_SOAK_DIR (default
# $target_dir/soak) for a failed run to be read with tests/soak/history.py.
step "pytest tests/soak"
export SKIFF_SOAK_DIR=${SKIFF_SOAK_DIR:-$target_dir/soak}
mkdir -p "$SKIFF_SOAK_DIR"
# ~10 MB a run: keep the last six runs' histories.
find "$SKIFF_SOAK_DIR" -mindepth 1 -maxdepth 1 -type d -printf '%T@ %p\n' | sort -rn | tail -n +7 \
    | cut -d' ' -f2- | xargs -r rm -rf
"$venv/bin/python" -m pytest tests/soak -p no:cacheprovider -q -rfEs --tb=short
