#!/usr/bin/env bash
# handOffLead -> WebSocket delivery latency with many subscribers (benches/handoff_latency.rs):
#   (a) SQLite, one server: mutations and subscribers on the same process;
#   (b) PostgreSQL, two replicas on one database: mutations to A, every subscriber on B (the
#       event crosses through LISTEN/NOTIFY).
#
#   bench/handoff_latency.sh
#   SCENARIOS=pg SUBSCRIBERS=200 HANDOFFS=50 bench/handoff_latency.sh
#
# Knobs: SCENARIOS ("sqlite pg"), SUBSCRIBERS (1000), HANDOFFS (200), PAUSE_MS (20), WORK (/tmp/hl),
#        PG_HOST (127.0.0.1), PG_USER (postgres), PG_DB (bench_handoff, dropped and recreated),
#        PORT_SQLITE (8211), PORT_A (8212), PORT_B (8213), CARGO_TARGET_DIR (<repo>/target),
#        BUILD (1; 0 skips the builds), SERVER_BIN (the server to run; default the release build).
#        Any other variable the bench reads (BATCH, RAMP_MS, ...)
#        passes through.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(dirname "$HERE")
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target}
BIN=${SERVER_BIN:-$CARGO_TARGET_DIR/release/closedloop}
WORK=${WORK:-/tmp/hl}
SCENARIOS=${SCENARIOS:-"sqlite pg"}
export SUBSCRIBERS=${SUBSCRIBERS:-1000} HANDOFFS=${HANDOFFS:-200}
PG_HOST=${PG_HOST:-127.0.0.1}
PG_USER=${PG_USER:-postgres}
PG_DB=${PG_DB:-bench_handoff}
PORT_SQLITE=${PORT_SQLITE:-8211}
PORT_A=${PORT_A:-8212}
PORT_B=${PORT_B:-8213}
log() { echo "[$(date +%H:%M:%S)] $*" >&2; }
die() { echo "handoff_latency.sh: $*" >&2; exit 1; }

# Every subscriber is a socket in the bench and one in the server (plus database connections).
need=$((SUBSCRIBERS + 512))
if ! ulimit -n 65536 2>/dev/null; then
  hard=$(ulimit -Hn)
  if [ "$hard" = unlimited ] || [ "$hard" -ge "$need" ]; then
    ulimit -n "$hard"
  else
    die "cannot raise the open-file limit to $need (hard limit $hard); raise it (ulimit -Hn, limits.conf) or lower SUBSCRIBERS"
  fi
fi
log "open-file limit: $(ulimit -n)"

# The bench is built (and found) before any server starts, so no build runs during a scenario.
if [ "${BUILD:-1}" = 1 ]; then
  log "building (release) in $CARGO_TARGET_DIR"
  (cd "$ROOT" && cargo build --release -q --bin closedloop)
  BENCH_EXE=$(cd "$ROOT" && cargo bench -q --bench handoff_latency --no-run --message-format=json |
    grep -o '"executable":"[^"]*handoff_latency[^"]*"' | tail -n1 | cut -d'"' -f4)
else
  BENCH_EXE=$(ls -t "$CARGO_TARGET_DIR"/release/deps/handoff_latency-* 2>/dev/null | grep -v '\.d$' | head -n1 || true)
fi
[ -n "${BENCH_EXE:-}" ] && [ -x "$BENCH_EXE" ] || die "no bench executable (build it: cargo bench --bench handoff_latency --no-run)"
[ -x "$BIN" ] || die "no server binary at $BIN"

PIDS=()
stop_servers() {
  for p in "${PIDS[@]:-}"; do
    [ -n "$p" ] || continue
    kill "$p" 2>/dev/null || true
    for _ in $(seq 1 50); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$p" 2>/dev/null || true
  done
  PIDS=()
}
trap stop_servers EXIT
trap 'exit 130' INT TERM

# serve PORT URL LOGNAME: starts a server, waits for /healthz, appends its pid to PIDS.
serve() {
  local port=$1 url=$2 name=$3
  if curl -s -o /dev/null "http://127.0.0.1:$port/healthz"; then
    die "something already listens on 127.0.0.1:$port"
  fi
  RUST_LOG=warn BIND=127.0.0.1:$port "$BIN" serve --no-graphiql --database-url "$url" >"$WORK/$name.log" 2>&1 &
  PIDS+=($!)
  for _ in $(seq 1 100); do
    curl -sf -o /dev/null "http://127.0.0.1:$port/healthz" && return 0
    kill -0 "${PIDS[-1]}" 2>/dev/null || { cat "$WORK/$name.log" >&2; die "the $name server exited"; }
    sleep 0.2
  done
  die "the $name server did not answer /healthz on port $port within 20 s (log: $WORK/$name.log)"
}

# setup URL: migrates, creates the workspace and prints a MARKETING key.
setup() {
  local url=$1
  "$BIN" migrate --database-url "$url" >/dev/null
  "$BIN" workspace create bench --database-url "$url" >/dev/null
  "$BIN" key create --workspace bench --role MARKETING --name handoff-bench --database-url "$url" | grep -o 'clk_[A-Za-z0-9_-]*' | head -n1
}

bench() {
  local out=$1
  shift
  env "$@" "$BENCH_EXE" 2>&1 | tee "$out"
}

mkdir -p "$WORK"
RESULTS=()
for scenario in $SCENARIOS; do
  case $scenario in
    sqlite)
      log "scenario sqlite: one server, $SUBSCRIBERS subscribers, $HANDOFFS handoffs"
      rm -f "$WORK"/bench.db "$WORK"/bench.db-*
      url="sqlite://$WORK/bench.db?mode=rwc"
      key=$(setup "$url")
      [ -n "$key" ] || die "no key was printed"
      serve "$PORT_SQLITE" "$url" sqlite
      bench "$WORK/sqlite.txt" MUTATE_URL="http://127.0.0.1:$PORT_SQLITE" SUBSCRIBE_URL="http://127.0.0.1:$PORT_SQLITE" \
        KEY="$key" SERVER_PIDS="${PIDS[0]}"
      stop_servers
      RESULTS+=("sqlite")
      ;;
    pg)
      log "scenario pg: replicas A (mutations) and B ($SUBSCRIBERS subscribers), $HANDOFFS handoffs"
      pg_isready -q -h "$PG_HOST" || die "PostgreSQL does not answer on $PG_HOST"
      psql -qX -h "$PG_HOST" -U "$PG_USER" -d postgres -v ON_ERROR_STOP=1 \
        -c "DROP DATABASE IF EXISTS $PG_DB" -c "CREATE DATABASE $PG_DB"
      url="postgres://$PG_USER@$PG_HOST:5432/$PG_DB"
      key=$(setup "$url")
      [ -n "$key" ] || die "no key was printed"
      serve "$PORT_A" "$url" pg-a
      serve "$PORT_B" "$url" pg-b
      bench "$WORK/pg.txt" MUTATE_URL="http://127.0.0.1:$PORT_A" SUBSCRIBE_URL="http://127.0.0.1:$PORT_B" \
        KEY="$key" SERVER_PIDS="${PIDS[0]},${PIDS[1]}"
      stop_servers
      RESULTS+=("pg")
      ;;
    *) die "unknown scenario $scenario (sqlite, pg)" ;;
  esac
done

echo
echo "== handoff latency, $SUBSCRIBERS subscribers x $HANDOFFS handoffs =="
for r in "${RESULTS[@]}"; do
  echo "-- $r"
  grep -E '^(deliveries|latency|per handoff|mutation round|server RSS|CPU over|verdict)' "$WORK/$r.txt" || true
  grep '^SUMMARY' "$WORK/$r.txt" | sed 's/^SUMMARY //'
done
