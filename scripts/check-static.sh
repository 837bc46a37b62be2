#!/usr/bin/env bash
# Checks the binaries built by scripts/build-static.sh (out/static/):
#   - `file` says statically linked, `ldd` finds no shared library;
#   - stripped size of each is under 8 MiB;
#   - `--version` exits 0; a missing required variable exits 2 with one stderr line naming it;
#   - start-to-ready (exec until `GET /health` answers 200) is under 50 ms;
#   - idle RSS (VmRSS once ready) is under 10 MiB;
#   - no system TLS stack in the dependency tree (webpki-roots bundled);
#   - (as root) the worker resolves a name in an empty chroot: musl, no NSS.
# Prints the figures and writes them to out/static/figures.txt. Exits non-zero if any check
# fails. Needs: file, ldd (or readelf), strip, python3 (for the timing), openssl (optional:
# without it a fixed public test key is used for the JWKS).
#
# Network: loopback only. The hub gets a JWKS file and a DISCORD_API_BASE that never
# answers (it is not called before a room is created); the worker gets a
# DISCORD_GATEWAY_URL on a closed loopback port (it keeps retrying, its /health answers).
set -uo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
OUT="$ROOT/out/static"
MAX_BYTES=$((8 * 1024 * 1024))
MAX_READY_MS=${MAX_READY_MS:-50}
MAX_RSS_KIB=$((10 * 1024))
SECRET=check-static-hub-secret-0123456789abcdef
TOKEN=check-static-bot-token
GUILD=81384788765712384

failures=0
fail() { printf 'FAIL %s\n' "$*"; failures=$((failures + 1)); }
pass() { printf 'ok   %s\n' "$*"; }

WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
: >"$WORK/figures"
figure() { printf '%s\n' "$*" >>"$WORK/figures"; }

# --- a JWKS with one P-256 public key -------------------------------------------------------
b64url() { base64 -w0 | tr '+/' '-_' | tr -d '='; }
if command -v openssl >/dev/null 2>&1 \
    && openssl ecparam -name prime256v1 -genkey -noout -out "$WORK/key.pem" 2>/dev/null \
    && openssl ec -in "$WORK/key.pem" -pubout -outform DER 2>/dev/null | tail -c 64 >"$WORK/xy" \
    && [ "$(stat -c %s "$WORK/xy")" -eq 64 ]; then
    X=$(head -c 32 "$WORK/xy" | b64url)
    Y=$(tail -c 32 "$WORK/xy" | b64url)
else
    # The public key of the Wycheproof ES256 JWS test group (hub-core/testdata).
    X=04N0xi21hshyvBp7I167sbE_bXqyqkAPfefdklMO7wY
    Y=UI8exy-C06a7DUnjIdENkxeFtHM4-l_41LqEw9nVgmw
fi
printf '{"keys":[{"kty":"EC","crv":"P-256","alg":"ES256","use":"sig","kid":"check","x":"%s","y":"%s"}]}\n' \
    "$X" "$Y" >"$WORK/jwks.json"
mkdir -p "$WORK/data"

free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'
}
API_PORT=$(free_port)
WORKER_HEALTH_PORT=$(free_port)
DEAD_PORT=$(free_port) # nothing listens there

api_env=(
    PATH=/nonexistent
    HOST=127.0.0.1 PORT="$API_PORT"
    PRIMARY_GUILD_ID="$GUILD" HUB_SECRET="$SECRET" DISCORD_BOT_TOKEN="$TOKEN"
    DISCORD_API_BASE="http://127.0.0.1:$DEAD_PORT/api/v10"
    JWT_ISSUER=https://app.example JWT_AUDIENCE=spell-coven
    JWT_PUBLIC_JWKS_FILE="$WORK/jwks.json" DATA_DIR="$WORK/data"
    LOG_FORMAT=json RUST_LOG=warn
)
worker_env=(
    PATH=/nonexistent
    DISCORD_BOT_TOKEN="$TOKEN" PRIMARY_GUILD_ID="$GUILD" HUB_SECRET="$SECRET"
    HUB_ENDPOINT="http://127.0.0.1:$API_PORT/internal/events"
    DISCORD_GATEWAY_URL="ws://127.0.0.1:$DEAD_PORT"
    HEALTH_ADDR="127.0.0.1:$WORKER_HEALTH_PORT"
    LOG_FORMAT=json RUST_LOG=error
)

# Starts "$@" (an `env -i ...` command line), polls http://127.0.0.1:$port/health until it
# answers 200, prints "<ready ms> <VmRSS KiB>", then sends SIGTERM and waits for the exit.
# The time runs from just before exec to the first 200; polling is a raw socket loop so the
# probe costs microseconds, not a curl process per try.
measure() {
    local port=$1
    shift
    python3 - "$port" "$@" <<'PY'
import os, signal, socket, subprocess, sys, time

port = int(sys.argv[1])
argv = sys.argv[2:]
t0 = time.perf_counter()
proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
deadline = t0 + 20.0
ready_ms = None
while time.perf_counter() < deadline:
    if proc.poll() is not None:
        print(f"exited early with status {proc.returncode}", file=sys.stderr)
        sys.exit(1)
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=2) as s:
            s.sendall(b"GET /health HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
            head = s.recv(64)
        if head.startswith(b"HTTP/1.1 200"):
            ready_ms = (time.perf_counter() - t0) * 1000
            break
    except OSError:
        pass
    time.sleep(0.0005)
if ready_ms is None:
    proc.kill()
    print("not ready within 20 s", file=sys.stderr)
    sys.exit(1)
# Idle: let start-up tasks settle, then read the resident set.
time.sleep(0.5)
rss_kib = None
with open(f"/proc/{proc.pid}/status") as f:
    for line in f:
        if line.startswith("VmRSS:"):
            rss_kib = int(line.split()[1])
proc.send_signal(signal.SIGTERM)
try:
    code = proc.wait(timeout=15)
except subprocess.TimeoutExpired:
    proc.kill()
    code = "timeout"
print(f"{ready_ms:.1f} {rss_kib} {code}")
PY
}

# --- TLS roots bundled, no system TLS stack ---------------------------------------------------
echo "== dependencies (x86_64-unknown-linux-musl)"
if command -v cargo >/dev/null 2>&1 \
    && tree=$(cd "$ROOT" && cargo tree -p api-bin -p worker-bin --target x86_64-unknown-linux-musl \
        -e normal --prefix none 2>/dev/null); then
    bad=$(printf '%s\n' "$tree" | grep -oE '^(openssl|openssl-sys|native-tls|rustls-native-certs|aws-lc-rs|aws-lc-sys|rustls-platform-verifier) ' | sort -u | tr '\n' ' ')
    if [ -n "$bad" ]; then
        fail "system TLS crates in the binaries' tree: $bad"
    else
        pass "no openssl / native-tls / rustls-native-certs / aws-lc"
    fi
    if printf '%s\n' "$tree" | grep -q '^webpki-roots '; then
        pass "webpki-roots bundled"
    else
        fail "webpki-roots missing from the tree"
    fi
else
    fail "cargo tree failed"
fi

for bin in spell-coven-api spell-coven-worker; do
    path="$OUT/$bin"
    echo "== $bin"
    if [ ! -x "$path" ]; then
        fail "$bin: $path missing (run scripts/build-static.sh)"
        continue
    fi

    # 1. Static linking.
    desc=$(file -b "$path")
    if [[ "$desc" == *"statically linked"* || "$desc" == *"static-pie linked"* ]]; then
        pass "file: $desc"
    else
        fail "file does not say statically linked: $desc"
    fi
    if readelf -lW "$path" 2>/dev/null | grep -q 'INTERP'; then
        fail "has a program interpreter (dynamic loader)"
    fi
    if readelf -dW "$path" 2>/dev/null | grep -q '(NEEDED)'; then
        fail "needs shared libraries: $(readelf -dW "$path" | grep '(NEEDED)' | tr -s ' ')"
    fi
    ldd_out=$(ldd "$path" 2>&1)
    if [[ "$ldd_out" == *"not a dynamic executable"* || "$ldd_out" == *"statically linked"* ]]; then
        pass "ldd: $(echo "$ldd_out" | head -1 | sed 's/^[[:space:]]*//')"
    else
        fail "ldd lists libraries: $ldd_out"
    fi

    # 2. Stripped size.
    strip -o "$WORK/$bin.stripped" "$path"
    size=$(stat -c %s "$WORK/$bin.stripped")
    kib=$((size / 1024))
    figure "$bin stripped_bytes=$size"
    if [ "$size" -lt "$MAX_BYTES" ]; then
        pass "stripped size $size bytes ($kib KiB) < 8 MiB"
    else
        fail "stripped size $size bytes ($kib KiB) >= 8 MiB"
    fi

    # 3. --version.
    version=$("$path" --version 2>&1)
    code=$?
    if [ "$code" -eq 0 ] && [[ "$version" == "$bin "* ]]; then
        pass "--version: $version"
    else
        fail "--version exited $code: $version"
    fi
    if "$path" --help | grep -q 'HUB_SECRET'; then
        pass "--help lists the variables"
    else
        fail "--help does not list HUB_SECRET"
    fi

    # 4. A missing required variable: exit 2, one stderr line naming it.
    if [ "$bin" = spell-coven-api ]; then
        envs=("${api_env[@]}")
    else
        envs=("${worker_env[@]}")
    fi
    without=()
    for kv in "${envs[@]}"; do
        [[ "$kv" == HUB_SECRET=* ]] || without+=("$kv")
    done
    env -i "${without[@]}" "$path" >"$WORK/out" 2>"$WORK/err"
    code=$?
    lines=$(wc -l <"$WORK/err")
    if [ "$code" -eq 2 ] && [ "$lines" -eq 1 ] && grep -q 'HUB_SECRET' "$WORK/err" \
        && ! grep -q "$TOKEN" "$WORK/err"; then
        pass "HUB_SECRET missing: exit 2, stderr: $(cat "$WORK/err")"
    else
        fail "HUB_SECRET missing: exit $code, $lines stderr lines: $(head -3 "$WORK/err")"
    fi

    # 5. Start-to-ready and idle RSS (the api on its port, the worker on HEALTH_ADDR).
    if [ "$bin" = spell-coven-api ]; then port=$API_PORT; else port=$WORKER_HEALTH_PORT; fi
    if ! command -v python3 >/dev/null 2>&1; then
        fail "python3 not found: cannot time start-to-ready"
        continue
    fi
    # Best of 5: the first run pays for a cold page cache, and the machine is shared.
    best_ms=
    best_rss=
    all_ms=
    for _ in 1 2 3 4 5; do
        if ! result=$(measure "$port" env -i "${envs[@]}" "$path" 2>"$WORK/measure.err"); then
            fail "start-to-ready: $(cat "$WORK/measure.err")"
            break
        fi
        read -r ms rss exit_code <<<"$result"
        all_ms="$all_ms $ms"
        if [ "$exit_code" != 0 ]; then
            fail "SIGTERM after ready: exit $exit_code (want 0)"
        fi
        if [ -z "$best_ms" ] || python3 -c "import sys; sys.exit(0 if $ms < $best_ms else 1)"; then
            best_ms=$ms
        fi
        if [ -z "$best_rss" ] || [ "$rss" -lt "$best_rss" ]; then best_rss=$rss; fi
    done
    [ -n "$best_ms" ] || continue
    median_ms=$(printf '%s\n' $all_ms | sort -n | sed -n 3p)
    figure "$bin ready_ms=$best_ms ready_median_ms=$median_ms idle_rss_kib=$best_rss (runs:$all_ms)"
    if python3 -c "import sys; sys.exit(0 if $best_ms < $MAX_READY_MS else 1)"; then
        pass "start-to-ready ${best_ms} ms < ${MAX_READY_MS} ms (best of 5)"
    else
        fail "start-to-ready ${best_ms} ms >= ${MAX_READY_MS} ms (best of 5)"
    fi
    if [ "$best_rss" -lt "$MAX_RSS_KIB" ]; then
        pass "idle RSS ${best_rss} KiB < 10 MiB"
    else
        fail "idle RSS ${best_rss} KiB >= 10 MiB"
    fi
done

# --- name resolution without glibc/NSS, as in a scratch container ---------------------------
# A chroot holding only the worker, /etc/hosts (with a made-up name) and /etc/resolv.conf:
# the worker must resolve the name with musl's resolver and open its gateway connection to a
# loopback listener. Needs root (chroot); skipped otherwise.
echo "== name resolution in an empty root"
if [ "$(id -u)" -ne 0 ] || ! command -v chroot >/dev/null 2>&1; then
    echo "skip (needs root and chroot)"
elif [ -x "$OUT/spell-coven-worker" ]; then
    jail="$WORK/jail"
    mkdir -p "$jail/etc"
    cp "$OUT/spell-coven-worker" "$jail/"
    printf '127.0.0.1 localhost\n127.0.0.1 gateway.spell-coven.test\n' >"$jail/etc/hosts"
    printf 'nameserver 127.0.0.1\n' >"$jail/etc/resolv.conf"
    if python3 - "$jail" "$(command -v chroot)" "${worker_env[@]}" <<'PY' 2>"$WORK/dns.err"; then
import socket, subprocess, sys
jail, chroot, env_list = sys.argv[1], sys.argv[2], sys.argv[3:]
env = dict(kv.split("=", 1) for kv in env_list)
srv = socket.socket()
srv.bind(("127.0.0.1", 0))
srv.listen(1)
srv.settimeout(20)
env["DISCORD_GATEWAY_URL"] = f"ws://gateway.spell-coven.test:{srv.getsockname()[1]}"
env.pop("HEALTH_ADDR", None)
proc = subprocess.Popen([chroot, jail, "/spell-coven-worker"], env=env,
                        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
try:
    conn, _ = srv.accept()
    first = conn.recv(512).split(b"\r\n")[0]
    ok = first.startswith(b"GET /?v=10&encoding=json")
finally:
    proc.terminate()
    proc.wait(timeout=15)
sys.exit(0 if ok else 1)
PY
        pass "worker resolved gateway.spell-coven.test from /etc/hosts in an empty root (musl, no NSS)"
    else
        fail "worker could not resolve a name in an empty root: $(head -3 "$WORK/dns.err")"
    fi
fi

mkdir -p "$OUT"
cp "$WORK/figures" "$OUT/figures.txt"
echo "== figures (out/static/figures.txt)"
cat "$WORK/figures"
if [ "$failures" -ne 0 ]; then
    echo "check-static: $failures check(s) failed"
    exit 1
fi
echo "check-static: all checks passed"
