#!/usr/bin/env bash
# Bulk export of the M dataset (BENCHMARKS.md, "Bulk export (issue 28)"): the M dataset
# (gen.py --scale M --seed 42, to_import.py) imported into a fresh SQLite file, then
# `closedloop export DIR --format parquet` of every table RUNS times under /usr/bin/time -v,
# the rows and bytes of each file, and DuckDB (from PyPI, in a venv under $WORK) reading the
# files: the sum of the current LINEAR version's credits per campaign, timed.
#
#   CARGO_TARGET_DIR=/work/target-export-rel bench/export.sh
#   BUILD=0 BIN=/path/to/closedloop RUNS=5 bench/export.sh
#
# Knobs: WORK (/tmp/perf), CARGO_TARGET_DIR (<repo>/target), BUILD (1; 0 skips the release
#        build), BIN (default the release build), RUNS (3), GEN (/work/shared/bench),
#        PYTHON (a Python with duckdb; default a venv made in $WORK/duckdb-venv).
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(dirname "$HERE")
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target}
BIN=${BIN:-$CARGO_TARGET_DIR/release/closedloop}
WORK=${WORK:-/tmp/perf}
RUNS=${RUNS:-3}
if [ -z "${GEN:-}" ]; then
  for g in "$ROOT/../shared/bench" /work/shared/bench; do [ -f "$g/gen.py" ] && GEN=$g && break; done
fi
DATA=$WORK/data/M
IMPORT=$WORK/import/M
DB=$WORK/export-m.db
URL="sqlite://$DB?mode=rwc"
OUT=$WORK/export-m
log() { echo "[$(date -u +%H:%M:%S)] $*" >&2; }
die() { echo "export.sh: $*" >&2; exit 1; }

mkdir -p "$WORK"
if [ -z "${PYTHON:-}" ]; then
  PYTHON=$WORK/duckdb-venv/bin/python
  if ! "$PYTHON" -c 'import duckdb, numpy' 2>/dev/null; then
    log "installing duckdb and numpy into $WORK/duckdb-venv"
    python3 -m venv "$WORK/duckdb-venv"
    "$PYTHON" -m pip install -q --disable-pip-version-check duckdb numpy
  fi
fi
if [ "${BUILD:-1}" = 1 ]; then
  log "building (release) in $CARGO_TARGET_DIR"
  (cd "$ROOT" && cargo build --release -q --bin closedloop)
fi
[ -x "$BIN" ] || die "no binary at $BIN"

if [ ! -f "$DATA/opportunities.csv" ]; then
  [ -n "${GEN:-}" ] || die "no gen.py found (set GEN to the shared bench directory)"
  log "generating the M dataset into $DATA"
  "$PYTHON" "$GEN/gen.py" --scale M --seed 42 --out "$DATA"
fi
if [ ! -f "$IMPORT/opportunity_contacts.csv" ]; then
  log "converting to the import format into $IMPORT"
  python3 "$GEN/to_import.py" "$DATA" "$IMPORT"
fi

echo "== bench/export.sh $(date -u +%Y-%m-%dT%H:%M:%SZ), $(nproc) cores, commit $(git -C "$ROOT" rev-parse --short HEAD)"
echo "binary: $BIN ($(date -u -r "$BIN" +%Y-%m-%dT%H:%M:%SZ))"
if [ ! -f "$DB" ] || [ "$BIN" -nt "$DB" ]; then
  log "importing $IMPORT into $DB (workspace bench)"
  rm -f "$DB" "$DB"-wal "$DB"-shm
  "$BIN" import "$IMPORT" --workspace bench --database-url "$URL" | tail -n 2
fi

for run in $(seq 1 "$RUNS"); do
  rm -rf "$OUT"
  echo
  echo "#### run $run: closedloop export $OUT --workspace bench --format parquet  (uptime: $(uptime | sed 's/.*load/load/'))"
  /usr/bin/time -v "$BIN" export "$OUT" --workspace bench --format parquet --database-url "$URL" \
    >"$WORK/export-stdout.txt" 2>"$WORK/export-stderr.txt" || { cat "$WORK/export-stderr.txt" >&2; die "export failed"; }
  grep -E '^export: |^exported ' "$WORK/export-stderr.txt"
  grep -E 'Elapsed \(wall clock\)|User time|System time|Maximum resident' "$WORK/export-stderr.txt"
done
echo
echo "#### files (last run)"
cat "$WORK/export-stdout.txt"
du -sh "$OUT"

echo
echo "#### DuckDB $("$PYTHON" -c 'import duckdb; print(duckdb.__version__)') over the files"
(cd "$OUT" && "$PYTHON" - <<'EOF'
import time, duckdb
con = duckdb.connect()
queries = {
    "rows per file": "SELECT (SELECT count(*) FROM 'leads.parquet'), (SELECT count(*) FROM 'touchpoints.parquet'), (SELECT count(*) FROM 'attribution_credits.parquet')",
    "LINEAR credits per campaign (top 3 of all)": """
        SELECT campaign_id, SUM(credit) AS revenue, SUM(conversions) AS deals
        FROM 'attribution_credits.parquet' WHERE model = 'LINEAR' AND model_is_current
        GROUP BY 1 ORDER BY 2 DESC""",
    "LINEAR total": "SELECT SUM(credit), count(DISTINCT opportunity_id) FROM 'attribution_credits.parquet' WHERE model = 'LINEAR' AND model_is_current",
    "column types of attribution_credits": "SELECT string_agg(column_name || ' ' || column_type, ', ') FROM (DESCRIBE SELECT * FROM 'attribution_credits.parquet')",
}
for name, q in queries.items():
    times = []
    for _ in range(5):
        t = time.perf_counter()
        rows = con.execute(q).fetchall()
        times.append(time.perf_counter() - t)
    times.sort()
    print(f"{name}: {len(rows)} rows, first {rows[:3]}; fastest {times[0]*1000:.1f} ms, median {times[2]*1000:.1f} ms of 5")
EOF
)
