#!/usr/bin/env bash
# Two builds of closedloop on one query, interleaved A, B, A, B (the same database, one server at
# a time on port 8000), so that the machine's drift between runs falls on both alike.
#
#   bench/ab.sh BIN_A BIN_B [QUERY] [DATABASE_URL]
#   bench/ab.sh /tmp/bin/v5/closedloop /tmp/bin/v6/closedloop Q1 postgres://postgres@127.0.0.1:55432/closedloop_bench
#
# The database is one that `bench/run.sh` imported (workspace "m"). Knobs: ROUNDS (2), CONNS (4),
# DURATION (10). Each line is `bench/loadtest.py`'s: req/s, p50, p99, errors and CPU per process.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
A=$1 B=$2 QUERY=${3:-Q1} URL=${4:-postgres://postgres@127.0.0.1:55432/closedloop_bench}
TARGET=closedloop-pg
[[ $URL == sqlite* ]] && TARGET=closedloop-sqlite
PORT=8000
[ "$TARGET" = closedloop-sqlite ] && PORT=8001
for _ in $(seq 1 "${ROUNDS:-2}"); do
  for bin in "$A" "$B"; do
    key=$("$bin" key create --workspace m --role analyst --name ab --database-url "$URL")
    export CLOSEDLOOP_KEY=$key CLOSEDLOOP_SQLITE_KEY=$key
    "$bin" serve --bind "127.0.0.1:$PORT" --no-graphiql --database-url "$URL" >/dev/null 2>&1 &
    server=$!
    for _ in $(seq 1 60); do curl -sf -o /dev/null "http://127.0.0.1:$PORT/readyz" && break; sleep 1; done
    echo "== $bin $(date -u +%H:%M:%S)"
    python3 "$HERE/loadtest.py" --targets "$TARGET" --leads 100000 --queries "$QUERY" --conns "${CONNS:-4}" \
      --duration "${DURATION:-10}" --quiet-wait 5 --cpu-groups 'closedloop=closedloop serve,postgres=(^|/)postgres[ :]' \
      --out "$(mktemp)" 2>&1 | grep " c=" || true
    kill "$server"; wait "$server" 2>/dev/null || true
  done
done
