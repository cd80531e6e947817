#!/usr/bin/env bash
# The change feed during a bulk import: one subscriber follows `changes` from the start of an
# empty workspace while `closedloop import` writes the M dataset into the same SQLite file from
# another process; the subscriber counts and times what it is delivered (bench/changes_feed.py).
#
#   BIN=/work/target-rel/release/closedloop IMPORT=/tmp/perf/import/M bash bench/changes_feed.sh
#
# Knobs: BIN (the release build), IMPORT (an import directory, e.g. the M dataset made by
# bench/run.sh), WORK (/tmp/perf-feed), PORT (8399).
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
BIN=${BIN:?the closedloop binary}
IMPORT=${IMPORT:?an import directory}
WORK=${WORK:-/tmp/perf-feed}
PORT=${PORT:-8399}
mkdir -p "$WORK"
rm -f "$WORK"/feed.db*
URL="sqlite://$WORK/feed.db?mode=rwc"
if [ ! -x "$WORK/pyenv/bin/python" ]; then
  python3 -m venv "$WORK/pyenv"
  "$WORK/pyenv/bin/pip" install -q websockets
fi
"$BIN" migrate --database-url "$URL" >/dev/null
"$BIN" workspace create bench --database-url "$URL" >/dev/null
KEY=$("$BIN" key create --workspace bench --role ANALYST --database-url "$URL")
"$BIN" serve --bind "127.0.0.1:$PORT" --no-graphiql --database-url "$URL" >"$WORK/serve.log" 2>&1 &
SERVER=$!
trap 'kill $SERVER 2>/dev/null || true' EXIT
for _ in $(seq 1 100); do curl -sf "http://127.0.0.1:$PORT/healthz" >/dev/null && break; sleep 0.1; done
"$WORK/pyenv/bin/python" "$HERE/changes_feed.py" --url "ws://127.0.0.1:$PORT/graphql/ws" --key "$KEY" --idle 120 >"$WORK/feed.out" &
FEED=$!
sleep 1
start=$(date +%s.%N)
/usr/bin/time -f "import: %e s wall, %M KiB max RSS" "$BIN" import "$IMPORT" --workspace bench --database-url "$URL" 2>&1 | tail -3
echo "import finished after $(echo "$(date +%s.%N) - $start" | bc) s"
wait $FEED
cat "$WORK/feed.out"
