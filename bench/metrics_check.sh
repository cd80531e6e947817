#!/usr/bin/env bash
# Checks /metrics against a load generator: a release server on a seeded SQLite file, wrk posting
# one named GraphQL query for DURATION seconds (bench/graphql.lua), then the server's counter of
# that operation compared with the requests wrk completed. Passes within 1 % (BENCHMARKS.md).
#
#   bench/metrics_check.sh
#   CONNS=16 DURATION=30 bench/metrics_check.sh
#
# Knobs: BIN (default: the release binary under CARGO_TARGET_DIR or target/; built first unless
#        BUILD=0), CONNS (8), DURATION (20), LEADS (2000), PORT (8090), WORK (a temporary folder).
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(dirname "$HERE")
BIN=${BIN:-${CARGO_TARGET_DIR:-$ROOT/target}/release/closedloop}
CONNS=${CONNS:-8}
DURATION=${DURATION:-20}
LEADS=${LEADS:-2000}
PORT=${PORT:-8090}
WORK=${WORK:-$(mktemp -d /tmp/closedloop-metrics.XXXXXX)}
URL="sqlite://$WORK/metrics.db?mode=rwc"
BASE="http://127.0.0.1:$PORT"
log() { echo "[$(date +%H:%M:%S)] $*" >&2; }
SERVER=
trap '[ -n "$SERVER" ] && kill "$SERVER" 2>/dev/null || true' EXIT

command -v wrk >/dev/null || { apt-get update -qq && apt-get install -y -qq wrk; }
[ "${BUILD:-1}" = 0 ] || (cd "$ROOT" && cargo build --release -q)
if curl -s -o /dev/null "$BASE/healthz"; then
  echo "port $PORT is taken by a running server; stop it first" >&2; exit 1
fi

log "seeding $LEADS leads into $WORK"
"$BIN" seed --leads "$LEADS" --workspace metrics --database-url "$URL" >"$WORK/seed.log" 2>&1
KEY=$("$BIN" key create --workspace metrics --role analyst --name metrics-check --database-url "$URL")
"$BIN" serve --bind "127.0.0.1:$PORT" --no-graphiql --database-url "$URL" >"$WORK/server.log" 2>&1 &
SERVER=$!
for _ in $(seq 1 60); do curl -sf -o /dev/null "$BASE/readyz" && break; sleep 1; done

OPERATION=MetricsCheck
echo '{"query":"query MetricsCheck { leads(first: 20) { nodes { id email stage { key } } } }","operationName":"MetricsCheck"}' >"$WORK/bodies.jsonl"
# Load tests check that answers carry no `errors` (async-graphql answers 200 with errors inside).
ANSWER=$(curl -sf -H "Authorization: Bearer $KEY" -H 'Content-Type: application/json' --data @"$WORK/bodies.jsonl" "$BASE/graphql")
if [[ "$ANSWER" == *'"errors"'* || "$ANSWER" != *'"nodes"'* ]]; then
  echo "the query fails: $ANSWER" >&2; exit 1
fi

# The sum of the operation's request counters, over every outcome.
count() {
  curl -sf "$BASE/metrics" | awk -v op="$OPERATION" '
    index($0, "closedloop_graphql_requests_total{operation=\"" op "\"") == 1 { n += $NF }
    END { printf "%d\n", n }'
}
errors() {
  curl -sf "$BASE/metrics" | awk -v op="$OPERATION" '
    index($0, "closedloop_graphql_requests_total{operation=\"" op "\"") == 1 && $0 !~ /outcome="ok"/ { n += $NF }
    END { printf "%d\n", n }'
}

BEFORE=$(count)
log "wrk -t1 -c$CONNS -d${DURATION}s, $BEFORE requests counted before"
WRK_OUT=$(BODIES="$WORK/bodies.jsonl" AUTH_HEADER="Bearer $KEY" wrk -t1 -c"$CONNS" -d"${DURATION}s" -s "$HERE/graphql.lua" "$BASE/graphql")
echo "$WRK_OUT" >"$WORK/wrk.txt"
WRK=$(echo "$WRK_OUT" | sed -n 's/^WRKJSON //p' | python3 -c 'import json,sys; print(json.load(sys.stdin)["requests"])')
STATUS_ERRORS=$(echo "$WRK_OUT" | sed -n 's/^WRKJSON //p' | python3 -c 'import json,sys; print(json.load(sys.stdin)["err_status"])')
# Requests still in flight when wrk stopped are counted by the server once answered.
sleep 1
AFTER=$(count)
COUNTED=$((AFTER - BEFORE))
python3 - "$WRK" "$COUNTED" "$(errors)" "$STATUS_ERRORS" "$DURATION" "$CONNS" <<'EOF'
import sys
wrk, counted, errors, status_errors, duration, conns = map(int, sys.argv[1:])
diff = abs(counted - wrk) / wrk * 100
print(f"wrk completed {wrk} requests in {duration} s with {conns} connections ({wrk / duration:.0f}/s); "
      f"/metrics counted {counted} ({diff:.3f} % apart); non-ok outcomes {errors}, wrk status errors {status_errors}")
ok = diff <= 1.0 and errors == 0 and status_errors == 0
print("PASS" if ok else "FAIL")
sys.exit(0 if ok else 1)
EOF
