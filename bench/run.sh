#!/usr/bin/env bash
# Load-tests closedloop on the M dataset (Q1-Q3 of ../shared/bench/QUERIES.md) on PostgreSQL and
# SQLite. Everything heavy lives under $WORK (default /tmp/perf); see BENCHMARKS.md.
#
#   bench/run.sh                       # generate (if needed), import, serve, load-test both targets
#   STEPS="serve load" bench/run.sh    # reuse the imported databases
#
# Knobs: WORK, PG_URL (an empty database is created as closedloop_bench), CONNS (4,16), DURATION (20),
#        TARGETS (closedloop-pg,closedloop-sqlite), STEPS ("gen import serve load"),
#        BIN (default: the release binary under CARGO_TARGET_DIR or target/; built first unless BUILD=0).
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(dirname "$HERE")
WORK=${WORK:-/tmp/perf}
PG_ADMIN=${PG_ADMIN:-postgres://postgres@127.0.0.1:5432/postgres}
PG_URL=${PG_URL:-postgres://postgres@127.0.0.1:5432/closedloop_bench}
SQLITE_URL="sqlite://$WORK/closedloop_m.db?mode=rwc"
CONNS=${CONNS:-4,16}
DURATION=${DURATION:-20}
TARGETS=${TARGETS:-closedloop-pg,closedloop-sqlite}
STEPS=${STEPS:-"gen import serve load"}
BIN=${BIN:-${CARGO_TARGET_DIR:-$ROOT/target}/release/closedloop}
has() { [[ " $STEPS " == *" $1 "* ]]; }
log() { echo "[$(date +%H:%M:%S)] $*" >&2; }
PIDS=()
trap 'for p in "${PIDS[@]:-}"; do [ -n "$p" ] && kill "$p" 2>/dev/null || true; done' EXIT

command -v wrk >/dev/null || { apt-get update -qq && apt-get install -y -qq wrk; }
python3 -c 'import numpy' 2>/dev/null || pip install -q numpy
[ "${BUILD:-1}" = 0 ] || (cd "$ROOT" && cargo build --release -q)

if has gen; then
  [ -f "$WORK/data/M/touchpoints.csv" ] || python3 "$ROOT/../shared/bench/gen.py" --scale M --out "$WORK/data/M"
  [ -f "$WORK/import/M/touchpoints.csv" ] || python3 "$ROOT/../shared/bench/to_import.py" "$WORK/data/M" "$WORK/import/M"
fi

if has import; then
  log "import M into PostgreSQL"
  psql "$PG_ADMIN" -qc 'DROP DATABASE IF EXISTS closedloop_bench' -c 'CREATE DATABASE closedloop_bench'
  /usr/bin/time -f "import pg: %e s, %M KiB max RSS" "$BIN" import "$WORK/import/M" --workspace m --database-url "$PG_URL"
  log "import M into SQLite"
  rm -f "$WORK"/closedloop_m.db*
  /usr/bin/time -f "import sqlite: %e s, %M KiB max RSS" "$BIN" import "$WORK/import/M" --workspace m --database-url "$SQLITE_URL"
fi

if has serve; then
  # A server left running on a port would answer instead of the binary under test.
  for port in 8000 8001; do
    if curl -s -o /dev/null "http://127.0.0.1:$port/healthz"; then
      echo "port $port is taken by a running server; stop it first" >&2; exit 1
    fi
  done
  export CLOSEDLOOP_KEY CLOSEDLOOP_SQLITE_KEY
  CLOSEDLOOP_KEY=$("$BIN" key create --workspace m --role analyst --name bench --database-url "$PG_URL")
  CLOSEDLOOP_SQLITE_KEY=$("$BIN" key create --workspace m --role analyst --name bench --database-url "$SQLITE_URL")
  "$BIN" serve --bind 127.0.0.1:8000 --no-graphiql --database-url "$PG_URL" >"$WORK/closedloop-pg.log" 2>&1 & PIDS+=($!)
  "$BIN" serve --bind 127.0.0.1:8001 --no-graphiql --database-url "$SQLITE_URL" >"$WORK/closedloop-sqlite.log" 2>&1 & PIDS+=($!)
  for port in 8000 8001; do
    for _ in $(seq 1 60); do curl -sf -o /dev/null "http://127.0.0.1:$port/readyz" && break; sleep 1; done
  done
fi

if has load; then
  mkdir -p "$WORK/results"
  python3 "$HERE/loadtest.py" --targets "$TARGETS" --leads 100000 --conns "$CONNS" --duration "$DURATION" \
    --cpu-groups 'closedloop=closedloop serve,postgres=(^|/)postgres[ :]' --out "$WORK/results/closedloop_M.json" \
    | tee "$WORK/results/closedloop_M.md"
fi
