#!/usr/bin/env bash
# Builds one fully static `skiff` (x86_64 Linux, glibc linked in with +crt-static, every feature,
# release profile), checks that it has no dynamic section, and prints its path and size.
#
#   scripts/build-static.sh            prints the binary's path on the last line of stdout
#
# Why glibc and not musl: these machines have only the x86_64-unknown-linux-gnu Rust target and
# cannot download another. A static glibc cannot load NSS modules, so `skiff` resolves host names
# itself when built this way (crates/resolve); see docs/architecture.md.
#
# `--target` is given explicitly so that RUSTFLAGS apply to the binary only, not to build scripts
# and proc-macros (which must stay dynamic: rustc loads proc-macros as shared objects).
#
# Environment: SKIFF_STATIC_TARGET_DIR, cargo's target directory for this build (default
# ~/.cache/skiff-static-target, kept between runs so that a rebuild only compiles what changed; not
# CARGO_TARGET_DIR, so that this release build never evicts the debug build the tests use);
# CARGO (default cargo).
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

target=x86_64-unknown-linux-gnu
export CARGO_TARGET_DIR=${SKIFF_STATIC_TARGET_DIR:-$HOME/.cache/skiff-static-target}
# getrandom 0.3 and 0.4 find glibc's getrandom() with dlsym, which finds nothing in a static
# binary, and then fall back to reading /dev/random and /dev/urandom, which an empty root lacks
# (uuid and rand panicked there). Their `linux_getrandom` backend calls getrandom() directly.
export RUSTFLAGS="${RUSTFLAGS:+$RUSTFLAGS }-C target-feature=+crt-static --cfg getrandom_backend=\"linux_getrandom\""

# glibc's static archives (libc.a, libpthread.a, ...) come with libc6-dev.
if [ ! -f /usr/lib/x86_64-linux-gnu/libc.a ]; then
    echo "build-static: /usr/lib/x86_64-linux-gnu/libc.a is missing: install libc6-dev" >&2
    exit 1
fi

echo "==> cargo build --release --target $target -p skiff-cli --all-features (+crt-static)" >&2
"${CARGO:-cargo}" build --release --locked --target "$target" -p skiff-cli --all-features >&2

binary=$CARGO_TARGET_DIR/$target/release/skiff

# A static executable has no program interpreter (PT_INTERP: the dynamic loader) and needs no
# shared object (no DT_NEEDED entry). Rust links x86_64 static glibc binaries as static-pie, which
# keep a dynamic section for relocating themselves, so its mere presence proves nothing.
if readelf --program-headers --wide "$binary" | grep -Eq '^\s*INTERP\s' ||
    readelf --dynamic --wide "$binary" | grep -q '(NEEDED)'; then
    echo "build-static: $binary is dynamically linked:" >&2
    readelf --program-headers --dynamic --wide "$binary" >&2
    exit 1
fi
if command -v ldd >/dev/null 2>&1; then
    # ldd exits 1 on a static binary; its message is the check.
    ldd_says=$(ldd "$binary" 2>&1 || true)
    case "$ldd_says" in
        *"not a dynamic executable"* | *"statically linked"*) ;;
        *)
            echo "build-static: ldd lists dependencies of $binary:" >&2
            echo "$ldd_says" >&2
            exit 1
            ;;
    esac
fi

bytes=$(stat -c %s "$binary")
echo "==> static binary: $binary, $bytes bytes ($(awk -v b="$bytes" 'BEGIN { printf "%.1f MiB", b / 1048576 }'))" >&2
echo "$binary"
