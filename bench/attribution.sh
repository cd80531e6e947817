#!/usr/bin/env bash
# Attribution on the M dataset (100,000 leads, 1,000,000 touchpoints, 1,509 won deals) in SQLite:
#   the import (which also writes the attribution ledger of the 8 rule-based models), then
#   through the HTTP API of the release server (bench/attribution.py does the requests):
#     ledger  `attribution` of each rule-based model by CAMPAIGN (+ LINEAR by CHANNEL), 3 + 30 runs;
#     compute the same with `source: COMPUTE`, 1 + 5 runs;
#     markov  MARKOV by CHANNEL and CAMPAIGN, 1 + 3 runs;
#     checks  totals, and LINEAR / FIRST_TOUCH / LAST_TOUCH against the a1/a2 SQL's semantics;
#   then MARKOV side by side: `closedloop markov-paths` (our read + exact solve, --repeat 5) and
#   ChannelAttribution's markov_model (bench/markov_reference.py, default max_step and 1000) on
#   the same path tables, compared by bench/attribution.py --compare-markov.
#
#   COMMIT=HEAD CARGO_TARGET_DIR=/work/target-release-bench bench/attribution.sh
#   BUILD=0 PHASES=http SERVER_BIN=/tmp/perf/closedloop-<rev> bench/attribution.sh --ledger-runs 50
#
# With COMMIT, give the build a target directory no other tree builds into: cargo fingerprints
# the workspace's own crates (closedloop, entity, migration) by relative path and mtime, and git
# archive leaves old mtimes, so in a target directory shared with the work tree it takes the work
# tree's artifacts for fresh and "builds" the commit into the work tree's binary. The binary
# measured is copied to $WORK/closedloop-<rev> right after the build.
#
# Knobs: WORK (/tmp/perf), CARGO_TARGET_DIR (<repo>/target), BUILD (1; 0 skips the build),
#        COMMIT (measure this commit, exported by git archive to /tmp/bench-src-<rev>, instead of
#        the work tree), PHASES ("http markov reference"), PORT (8398), SERVER_BIN (default the
#        release build), GEN (/work/shared/bench), REF_REPEAT (3; REF_REPEAT_CAMPAIGN 1),
#        REF_TIMEOUT (600 s per reference invocation); arguments are passed to bench/attribution.py.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(dirname "$HERE")
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target}
BIN=${SERVER_BIN:-$CARGO_TARGET_DIR/release/closedloop}
WORK=${WORK:-/tmp/perf}
PHASES=${PHASES:-"http markov reference"}
PORT=${PORT:-8398}
REF_REPEAT=${REF_REPEAT:-3}
REF_REPEAT_CAMPAIGN=${REF_REPEAT_CAMPAIGN:-1}
REF_TIMEOUT=${REF_TIMEOUT:-600}
if [ -z "${GEN:-}" ]; then
  for g in "$ROOT/../shared/bench" /work/shared/bench; do [ -f "$g/gen.py" ] && GEN=$g && break; done
fi
DATA=$WORK/data/M
IMPORT=$WORK/import/M
PRISTINE=$WORK/attr-pristine.db
DB=$WORK/attr.db
URL="sqlite://$DB?mode=rwc"
RANGE=(--from 2000-01-01T00:00:00Z --to 2100-01-01T00:00:00Z)
log() { echo "[$(date -u +%H:%M:%S)] $*" >&2; }
die() { echo "attribution.sh: $*" >&2; exit 1; }
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

mkdir -p "$WORK"
SRC=$ROOT
if [ -n "${COMMIT:-}" ]; then
  rev=$(git -C "$ROOT" rev-parse --short "$COMMIT")
  SRC=/tmp/bench-src-$rev
  if [ ! -f "$SRC/Cargo.toml" ]; then
    mkdir -p "$SRC"
    git -C "$ROOT" archive "$rev" | tar -x -C "$SRC"
  fi
  SOURCE="commit $rev (git archive into $SRC)"
elif git -C "$ROOT" diff --quiet HEAD -- src entity migration Cargo.toml Cargo.lock; then
  SOURCE="work tree at commit $(git -C "$ROOT" rev-parse --short HEAD), clean"
else
  SOURCE="work tree at commit $(git -C "$ROOT" rev-parse --short HEAD) with uncommitted changes"
fi
if [ "${BUILD:-1}" = 1 ]; then
  log "building (release) $SOURCE in $CARGO_TARGET_DIR"
  (cd "$SRC" && cargo build --release -q --bin closedloop)
  # A shared target directory's release/closedloop is overwritten by any other build (of the work
  # tree, say): measure a private copy, taken right after the build.
  if [ -n "${COMMIT:-}" ] && [ -z "${SERVER_BIN:-}" ]; then
    cmp -s "$BIN" "$WORK/closedloop-$rev" ||
      { cp "$BIN" "$WORK/closedloop-$rev.tmp" && mv "$WORK/closedloop-$rev.tmp" "$WORK/closedloop-$rev"; }
    BIN=$WORK/closedloop-$rev
  fi
fi
[ -x "$BIN" ] || die "no server binary at $BIN"
[ "${BUILD:-1}" = 1 ] || SOURCE="$SOURCE (BUILD=0: the binary was not rebuilt and may differ)"

if [ ! -f "$DATA/opportunities.csv" ]; then
  [ -n "${GEN:-}" ] || die "no gen.py found (set GEN to the shared bench directory)"
  python3 -c 'import numpy' 2>/dev/null || pip install -q numpy
  log "generating the M dataset into $DATA"
  python3 "$GEN/gen.py" --scale M --out "$DATA"
fi
if [ ! -f "$IMPORT/opportunity_contacts.csv" ]; then
  log "converting to the import format into $IMPORT"
  python3 "$GEN/to_import.py" "$DATA" "$IMPORT"
fi

echo "== bench/attribution.sh $(date -u +%Y-%m-%dT%H:%M:%SZ), $(nproc) cores; source: $SOURCE"
echo "binary: $BIN ($(date -u -r "$BIN" +%Y-%m-%dT%H:%M:%SZ))"
echo "uptime at start: $(uptime)"

# The pristine copy is imported again when the binary is newer (its migrations may differ).
if [ ! -f "$PRISTINE" ] || [ "$BIN" -nt "$PRISTINE" ]; then
  log "importing $IMPORT into $DB (workspace bench)"
  rm -f "$DB" "$DB"-wal "$DB"-shm "$DB"-journal "$PRISTINE" "$PRISTINE"-*
  t0=$(date +%s.%N)
  "$BIN" import "$IMPORT" --workspace bench --database-url "$URL" >"$WORK/attr-import.log" 2>&1 ||
    { tail -n 20 "$WORK/attr-import.log" >&2; die "import failed"; }
  echo
  echo "#### import (wall $(echo "$(date +%s.%N) - $t0" | bc) s); its output:"
  cat "$WORK/attr-import.log"
  for s in "" -wal -shm; do [ -f "$DB$s" ] && cp "$DB$s" "$PRISTINE$s"; done
else
  echo "(import skipped: $PRISTINE is newer than the binary; its log: $WORK/attr-import.log)"
fi

fresh_db() {
  rm -f "$DB" "$DB"-wal "$DB"-shm "$DB"-journal
  for s in "" -wal -shm; do [ -f "$PRISTINE$s" ] && cp "$PRISTINE$s" "$DB$s"; done
  return 0
}

serve() {
  if curl -s -o /dev/null "http://127.0.0.1:$PORT/healthz"; then
    die "something already listens on 127.0.0.1:$PORT"
  fi
  RUST_LOG=${RUST_LOG:-warn} "$BIN" serve --bind "127.0.0.1:$PORT" --no-graphiql --database-url "$URL" >"$WORK/attr-serve.log" 2>&1 &
  SERVER_PID=$!
  for _ in $(seq 1 300); do
    curl -sf -o /dev/null "http://127.0.0.1:$PORT/healthz" && return 0
    kill -0 "$SERVER_PID" 2>/dev/null || { cat "$WORK/attr-serve.log" >&2; die "the server exited"; }
    sleep 0.2
  done
  die "the server did not answer /healthz within 60 s"
}

for phase in $PHASES; do
  case $phase in
  http)
    fresh_db
    key=$("$BIN" key create --workspace bench --role ANALYST --name attribution-bench --database-url "$URL" 2>"$WORK/attr-key.err" |
      grep -o 'clk_[A-Za-z0-9_-]*' | head -n1 || true)
    [ -n "$key" ] || { cat "$WORK/attr-key.err" >&2; die "no key was printed"; }
    serve
    echo
    echo "#### HTTP (server pid $SERVER_PID, http://127.0.0.1:$PORT/graphql)"
    python3 "$HERE/attribution.py" --url "http://127.0.0.1:$PORT/graphql" --key "$key" --data-dir "$DATA" \
      --server-pid "$SERVER_PID" --json-out "$WORK/attribution.json" "$@"
    echo "server max RSS: $(grep VmHWM /proc/"$SERVER_PID"/status | awk '{print $2, $3}')"
    stop_server
    ;;
  markov)
    for g in CHANNEL CAMPAIGN; do
      out=$WORK/paths_$(echo "$g" | tr A-Z a-z).csv
      echo
      echo "#### closedloop markov-paths --group-by $g --repeat 5"
      /usr/bin/time -f "(process: wall %e s, max RSS %M KB)" "$BIN" markov-paths --workspace bench "${RANGE[@]}" \
        --group-by "$g" --out "$out" --repeat 5 --database-url "$URL" | tee "$WORK/markov-ours-$g.txt"
      echo "-- independent check of exactness (numpy, brute-force removals on the same path table):"
      python3 "$HERE/attribution.py" --exact-markov "$out" "$WORK/markov-ours-$g.txt"
    done
    ;;
  reference)
    for g in CHANNEL CAMPAIGN; do
      lg=$(echo "$g" | tr A-Z a-z)
      paths=$WORK/paths_$lg.csv
      rep=$REF_REPEAT; [ "$g" = CHANNEL ] || rep=$REF_REPEAT_CAMPAIGN
      [ -f "$paths" ] || die "no $paths (run the markov phase first)"
      for ms in default 1000; do
        extra=(); [ "$ms" = default ] || extra=(--max-step "$ms")
        out=$WORK/markov-ref-$g-$ms.csv
        echo
        echo "#### ChannelAttribution markov_model on $paths, max_step $ms, --repeat $rep"
        if timeout "$REF_TIMEOUT" python3 "$HERE/markov_reference.py" "$paths" --repeat "$rep" "${extra[@]}" \
          >"$out" 2>"$out.err"; then
          cat "$out.err"
          python3 "$HERE/attribution.py" --compare-markov "$WORK/markov-ours-$g.txt" "$out"
        else
          echo "(exit status $?)"
          cat "$out.err"
          echo "reference did not finish within $REF_TIMEOUT s (or failed); skipped"
        fi
      done
    done
    ;;
  *) die "unknown phase $phase" ;;
  esac
done
echo
echo "uptime at end: $(uptime)"
