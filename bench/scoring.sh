#!/usr/bin/env bash
# Lead-scoring workloads on the M dataset (100,000 leads, 1,000,000 touchpoints) in SQLite,
# through the HTTP API of the release server (bench/scoring.py does the requests):
#   W1 createScoringModel, then updateScoringModel x3 (each re-scores every lead);
#   W2 scoringMatrix (3 warm-up + 50 timed), unfiltered and filtered by a persona;
#   W3 recordTouchpoints, 5 batches of 10,000, with the model and (on another fresh copy of the
#      database, first) without any model.
#
#   CARGO_TARGET_DIR=/work/target-release bench/scoring.sh
#   COMMIT=HEAD CARGO_TARGET_DIR=/work/target-release bench/scoring.sh   # a commit, not the work tree
#   BUILD=0 PHASES=full bench/scoring.sh --matrix-runs 20     # options go to bench/scoring.py
#
# Knobs: WORK (/tmp/perf), CARGO_TARGET_DIR (<repo>/target), BUILD (1; 0 skips the build),
#        COMMIT (measure this commit, exported to $WORK/src-<rev>, instead of the work tree),
#        PHASES ("baseline full"), PORT (8321), SERVER_BIN (default the release build),
#        GEN (/work/shared/bench or ../shared/bench); arguments are passed to bench/scoring.py.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(dirname "$HERE")
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target}
BIN=${SERVER_BIN:-$CARGO_TARGET_DIR/release/closedloop}
WORK=${WORK:-/tmp/perf}
PHASES=${PHASES:-"baseline full"}
PORT=${PORT:-8321}
if [ -z "${GEN:-}" ]; then
  for g in "$ROOT/../shared/bench" /work/shared/bench; do [ -f "$g/gen.py" ] && GEN=$g && break; done
fi
DATA=$WORK/data/M
IMPORT=$WORK/import/M
PRISTINE=$WORK/score-pristine.db
DB=$WORK/score.db
URL="sqlite://$DB?mode=rwc"
log() { echo "[$(date -u +%H:%M:%S)] $*" >&2; }
die() { echo "scoring.sh: $*" >&2; exit 1; }
SERVER_PID=

stop_server() {
  if [ -n "$SERVER_PID" ]; then
    kill "$SERVER_PID" 2>/dev/null || true
    for _ in $(seq 1 100); do kill -0 "$SERVER_PID" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$SERVER_PID" 2>/dev/null || true
    SERVER_PID=
  fi
}
trap stop_server EXIT
trap 'exit 130' INT TERM

# The source measured: the work tree, or with COMMIT=<rev> that commit exported by git archive.
SRC=$ROOT
if [ -n "${COMMIT:-}" ]; then
  rev=$(git -C "$ROOT" rev-parse --short "$COMMIT")
  SRC=$WORK/src-$rev
  if [ ! -f "$SRC/Cargo.toml" ]; then
    mkdir -p "$SRC"
    git -C "$ROOT" archive "$rev" | tar -x -C "$SRC"
  fi
  SOURCE="commit $rev (git archive into $SRC)"
elif git -C "$ROOT" diff --quiet HEAD -- src entity migration Cargo.toml Cargo.lock; then
  SOURCE="work tree at commit $(git -C "$ROOT" rev-parse --short HEAD), clean"
else
  SOURCE="work tree at commit $(git -C "$ROOT" rev-parse --short HEAD) with uncommitted changes (diff sha256 $(git -C "$ROOT" diff HEAD -- src entity migration Cargo.toml Cargo.lock | sha256sum | cut -c1-12))"
fi
if [ "${BUILD:-1}" = 1 ]; then
  log "building (release) $SOURCE in $CARGO_TARGET_DIR"
  (cd "$SRC" && cargo build --release -q --bin closedloop)
fi
[ -x "$BIN" ] || die "no server binary at $BIN"
[ "${BUILD:-1}" = 1 ] || SOURCE="$SOURCE (BUILD=0: the binary was not rebuilt and may differ)"

mkdir -p "$WORK"
if [ ! -f "$DATA/leads.csv" ]; then
  [ -n "${GEN:-}" ] || die "no gen.py found (set GEN to the shared bench directory)"
  python3 -c 'import numpy' 2>/dev/null || pip install -q numpy
  log "generating the M dataset into $DATA"
  python3 "$GEN/gen.py" --scale M --out "$DATA"
fi
if [ ! -f "$IMPORT/leads.csv" ] || [ ! -f "$IMPORT/touchpoints.csv" ]; then
  log "converting to the import format into $IMPORT"
  python3 "$GEN/to_import.py" "$DATA" "$IMPORT"
fi
# The pristine copy is imported again when the binary is newer (its migrations may differ).
if [ ! -f "$PRISTINE" ] || [ "$BIN" -nt "$PRISTINE" ]; then
  log "importing into $PRISTINE (workspace m)"
  rm -f "$PRISTINE" "$PRISTINE"-*
  t0=$(date +%s.%N)
  "$BIN" import "$IMPORT" --workspace m --database-url "sqlite://$PRISTINE?mode=rwc" >"$WORK/score-import.log" 2>&1 ||
    { tail -n 20 "$WORK/score-import.log" >&2; die "import failed"; }
  log "import took $(echo "$(date +%s.%N) - $t0" | bc) s"
fi

# fresh_db: a copy of the pristine import, with a MARKETING key; prints the key.
fresh_db() {
  rm -f "$DB" "$DB"-wal "$DB"-shm "$DB"-journal
  cp "$PRISTINE" "$DB"
  if [ -f "$PRISTINE-wal" ]; then cp "$PRISTINE-wal" "$DB-wal"; fi
  "$BIN" key create --workspace m --role MARKETING --name scoring-bench --database-url "$URL" 2>"$WORK/score-key.err" |
    grep -o 'clk_[A-Za-z0-9_-]*' | head -n1 || true
}

serve() {
  if curl -s -o /dev/null "http://127.0.0.1:$PORT/healthz"; then
    die "something already listens on 127.0.0.1:$PORT"
  fi
  RUST_LOG=${RUST_LOG:-warn} BIND=127.0.0.1:$PORT "$BIN" serve --no-graphiql --database-url "$URL" >"$WORK/score-serve-$1.log" 2>&1 &
  SERVER_PID=$!
  for _ in $(seq 1 300); do
    curl -sf -o /dev/null "http://127.0.0.1:$PORT/healthz" && return 0
    kill -0 "$SERVER_PID" 2>/dev/null || { cat "$WORK/score-serve-$1.log" >&2; die "the server exited"; }
    sleep 0.2
  done
  die "the server did not answer /healthz within 60 s"
}

echo "== bench/scoring.sh $(date -u +%Y-%m-%dT%H:%M:%SZ), $(nproc) cores; source: $SOURCE"
echo "binary: $BIN ($(date -u -r "$BIN" +%Y-%m-%dT%H:%M:%SZ))"
echo "uptime at start: $(uptime)"
for phase in $PHASES; do
  log "phase $phase: fresh copy of $PRISTINE"
  key=$(fresh_db)
  [ -n "$key" ] || { cat "$WORK/score-key.err" >&2; die "no key was printed"; }
  serve "$phase"
  echo
  echo "#### phase $phase (fresh copy of the imported database, server pid $SERVER_PID)"
  python3 "$HERE/scoring.py" --url "http://127.0.0.1:$PORT/graphql" --key "$key" --import-dir "$IMPORT" \
    --phase "$phase" --server-pid "$SERVER_PID" --json-out "$WORK/scoring-$phase.json" "$@"
  echo "server max RSS: $(grep VmHWM /proc/"$SERVER_PID"/status | awk '{print $2, $3}')"
  stop_server
done
echo
echo "uptime at end: $(uptime)"
