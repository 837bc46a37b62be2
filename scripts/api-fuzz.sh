#!/usr/bin/env bash
# API fuzzing of the hub against its OpenAPI document (docs/openapi.json) with schemathesis.
#
# Starts discord-sim and spell-coven-api on loopback (JWKS file + token minted by
# `mint-test-token`), runs schemathesis with the checks below for a bounded time, stops
# everything on exit, and exits non-zero on any finding.
#
#   scripts/api-fuzz.sh                 # defaults: 100 examples per operation, 120 s at most
#   API_FUZZ_EXAMPLES=500 API_FUZZ_SECONDS=600 scripts/api-fuzz.sh
#
# Checks: status_code_conformance (every status documented, so a 500 or any 5xx other than
# the documented 502/503 of create-room/end-room is a finding), content_type_conformance,
# response_schema_conformance, response_headers_conformance; plus: the hub must not die or
# panic. `not_a_server_error` is left out on purpose: it flags the documented 503 that the
# hub must answer while discord-sim rate-limits it (contract §2). Output: out/api-fuzz/.
set -euo pipefail

cd "$(dirname "$0")/.."
ROOT=$(pwd)
OUT="$ROOT/out/api-fuzz"
VENV="$ROOT/out/venv"
EXAMPLES=${API_FUZZ_EXAMPLES:-100}
SECONDS_MAX=${API_FUZZ_SECONDS:-120}
CHECKS=${API_FUZZ_CHECKS:-status_code_conformance,content_type_conformance,response_schema_conformance,response_headers_conformance}

rm -rf "$OUT"
mkdir -p "$OUT"

if [ ! -x "$VENV/bin/schemathesis" ]; then
    python3 -m venv "$VENV"
    "$VENV/bin/pip" install --quiet schemathesis
fi
"$VENV/bin/schemathesis" --version

cargo build --quiet -p api-bin -p discord-sim -p system-tests --bins
BIN="$ROOT/target/debug"

PIDS=()
cleanup() {
    for pid in "${PIDS[@]}"; do
        kill "$pid" 2>/dev/null || true
    done
    for pid in "${PIDS[@]}"; do
        wait "$pid" 2>/dev/null || true
    done
}
trap cleanup EXIT INT TERM

free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'
}

wait_for() { # wait_for <description> <command...>: poll up to 30 s
    local what=$1
    shift
    for _ in $(seq 1 300); do
        if "$@" >/dev/null 2>&1; then return 0; fi
        sleep 0.1
    done
    echo "api-fuzz: timed out waiting for $what" >&2
    return 1
}

# The fake Discord; its URLs come as one JSON line on stdout.
"$BIN/discord-sim" --json --heartbeat-ms 1000 >"$OUT/sim.json" 2>"$OUT/sim.log" &
PIDS+=($!)
wait_for "discord-sim" grep -q api_base "$OUT/sim.json"
API_BASE=$(python3 -c 'import json,sys; d=json.loads(open(sys.argv[1]).readline()); print(d["api_base"])' "$OUT/sim.json")
GUILD_ID=$(python3 -c 'import json,sys; d=json.loads(open(sys.argv[1]).readline()); print(d.get("guild_id", "1200000000000000000"))' "$OUT/sim.json")

TOKEN=$("$BIN/mint-test-token" "$OUT/jwks.json" api-fuzz 7200)
PORT=$(free_port)
env -i PATH="$PATH" RUST_LOG=warn \
    HOST=127.0.0.1 PORT="$PORT" \
    PRIMARY_GUILD_ID="$GUILD_ID" \
    HUB_SECRET=api-fuzz-hub-secret-0123456789abcdef0123 \
    DISCORD_BOT_TOKEN=sim-token \
    DISCORD_API_BASE="$API_BASE" \
    JWT_ISSUER=https://issuer.system-test JWT_AUDIENCE=spell-coven \
    JWT_PUBLIC_JWKS_FILE="$OUT/jwks.json" \
    DATA_DIR="$OUT/data" \
    ROOM_CREATE_PER_MINUTE=10000 \
    "$BIN/spell-coven-api" >"$OUT/hub.log" 2>&1 &
HUB_PID=$!
PIDS+=($HUB_PID)
wait_for "the hub" python3 -c "import urllib.request,sys; urllib.request.urlopen('http://127.0.0.1:$PORT/health', timeout=2)"

set +e
"$VENV/bin/schemathesis" run "$ROOT/docs/openapi.json" \
    --url "http://127.0.0.1:$PORT" \
    -H "Authorization: Bearer $TOKEN" \
    --checks "$CHECKS" \
    --max-examples "$EXAMPLES" \
    --max-time "$SECONDS_MAX" \
    --request-timeout 30 \
    --workers 2 \
    --seed "${API_FUZZ_SEED:-1}" \
    --no-color \
    --report junit --report-dir "$OUT/report" 2>&1 | tee "$OUT/schemathesis.log"
STATUS=${PIPESTATUS[0]}
set -e

if ! kill -0 "$HUB_PID" 2>/dev/null; then
    echo "api-fuzz: the hub died during the run (see $OUT/hub.log)" >&2
    STATUS=1
fi
if grep -q "panicked" "$OUT/hub.log"; then
    echo "api-fuzz: the hub panicked (see $OUT/hub.log)" >&2
    STATUS=1
fi
if [ "$STATUS" -ne 0 ]; then
    echo "api-fuzz: FAILED (findings above; reports in $OUT)" >&2
fi
exit "$STATUS"
