#!/usr/bin/env bash
# Builds spell-coven-api and spell-coven-worker as fully static Linux executables
# (x86_64-unknown-linux-musl, release profile) and copies them to out/static/.
#
# Usage: scripts/build-static.sh
#   PROFILE=release-ci scripts/build-static.sh   # cheaper profile (see deploy/GUIDE.md)
#
# Installs what is missing, idempotently: the rustup target and, for the C parts of
# `ring`, a musl C compiler (Debian's musl-tools, used as CC_x86_64_unknown_linux_musl).
set -euo pipefail

TARGET=x86_64-unknown-linux-musl
PROFILE=${PROFILE:-release}
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
OUT="$ROOT/out/static"
cd "$ROOT"

log() { printf 'build-static: %s\n' "$*" >&2; }

# 1. The Rust standard library for musl.
if ! rustup target list --installed | grep -qx "$TARGET"; then
    log "adding rustup target $TARGET"
    rustup target add "$TARGET"
fi

# 2. A C compiler for musl (ring compiles C and assembly).
if ! command -v musl-gcc >/dev/null 2>&1; then
    log "installing musl-tools (musl-gcc)"
    if [ "$(id -u)" -eq 0 ]; then SUDO=; else SUDO=sudo; fi
    if command -v apt-get >/dev/null 2>&1; then
        $SUDO apt-get install -y --no-install-recommends musl-tools \
            || { $SUDO apt-get update && $SUDO apt-get install -y --no-install-recommends musl-tools; }
    else
        log "no apt-get: install musl-gcc (package musl-tools / musl) and retry"
        exit 1
    fi
fi
export CC_x86_64_unknown_linux_musl=musl-gcc
export AR_x86_64_unknown_linux_musl=${AR_x86_64_unknown_linux_musl:-ar}
# musl's rustc target links statically by default (crt-static); say it explicitly.
export CARGO_TARGET_X86_64_UNKNOWN_LINUX_MUSL_RUSTFLAGS="${CARGO_TARGET_X86_64_UNKNOWN_LINUX_MUSL_RUSTFLAGS:-} -C target-feature=+crt-static"

# 3. Build.
log "cargo build --profile $PROFILE --target $TARGET -p api-bin -p worker-bin"
start=$(date +%s)
cargo build --profile "$PROFILE" --target "$TARGET" -p api-bin -p worker-bin
end=$(date +%s)
log "build took $((end - start)) s"

# 4. Copy out and report sizes.
mkdir -p "$OUT"
for bin in spell-coven-api spell-coven-worker; do
    install -m 0755 "target/$TARGET/$PROFILE/$bin" "$OUT/$bin"
done
for bin in spell-coven-api spell-coven-worker; do
    bytes=$(stat -c %s "$OUT/$bin")
    printf '%-20s %9d bytes (%s KiB)\n' "$bin" "$bytes" "$((bytes / 1024))"
done
