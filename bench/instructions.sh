#!/usr/bin/env bash
# Instructions the server executes per request of Q1, Q2 or Q3 (bench/queries), counted by
# valgrind's callgrind: repeatable for the same binary and data whatever else the machine does,
# where req/s on this shared 2-core machine moves by 20 % between runs. It counts the closedloop
# process only (all its threads, SQLite's worker included), not PostgreSQL's.
#
#   bench/instructions.sh BIN DATABASE_URL QUERY [N]
#   bench/instructions.sh /tmp/bin/new/closedloop "sqlite:///tmp/perf/closedloop_m.db?mode=rwc" q2 30
#
# The database is one that `bench/run.sh` imported (workspace "m"). The server runs under
# callgrind; 5 requests warm it up, the counters are zeroed, N requests run one after the other
# (Q1: random leads, Q2: pages after random cursors, seeded), and the counters are dumped.
set -euo pipefail
BIN=$1 URL=$2 QUERY=$3 N=${4:-30}
PORT=${PORT:-8020}
HERE=$(cd "$(dirname "$0")" && pwd)
command -v valgrind >/dev/null || { apt-get update -qq && apt-get install -y -qq valgrind; }
OUT=$(mktemp -d)
# KEEP=DIR keeps the callgrind dump there, for callgrind_annotate.
trap 'kill "$SERVER" 2>/dev/null || true; [ -n "${KEEP:-}" ] && mkdir -p "$KEEP" && cp "$OUT"/callgrind.*.1 "$KEEP"/ 2>/dev/null; rm -rf "$OUT"' EXIT
# A server of an earlier run may still be exiting on the port (valgrind takes a while): wait for
# it, or this run's server cannot bind and the requests go to the dying one.
for _ in $(seq 1 60); do curl -s -o /dev/null "http://127.0.0.1:$PORT/healthz" || break; sleep 1; done
KEY=$("$BIN" key create --workspace m --role analyst --name instructions --database-url "$URL")
valgrind --tool=callgrind --callgrind-out-file="$OUT/callgrind.%p" \
  "$BIN" serve --bind "127.0.0.1:$PORT" --no-graphiql --database-url "$URL" >"$OUT/server.log" 2>&1 &
SERVER=$!
for _ in $(seq 1 120); do curl -sf -o /dev/null "http://127.0.0.1:$PORT/readyz" && break; sleep 1; done
python3 - "$HERE/queries/$QUERY.graphql" "$KEY" "$PORT" "$N" "$OUT" <<'PY'
import base64, glob, json, random, subprocess, sys, urllib.request
path, key, port, n, out = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), sys.argv[5]
text, query = open(path).read(), path.rsplit("/", 1)[-1].split(".")[0]
def body(rnd):
    if query == "q1":
        variables = {"id": str(rnd.randint(1, 100000))}
    elif query == "q2":
        cursor = json.dumps({"id": rnd.randint(1, 99000)}, separators=(",", ":")).encode()
        variables = {"after": base64.urlsafe_b64encode(cursor).decode().rstrip("=")}
    else:
        variables = {}
    return json.dumps({"query": text, "variables": variables}).encode()
def post(b):
    req = urllib.request.Request(f"http://127.0.0.1:{port}/graphql", data=b,
                                 headers={"content-type": "application/json", "authorization": f"Bearer {key}"})
    resp = json.load(urllib.request.urlopen(req))
    assert "errors" not in resp, resp
warm = random.Random(7)
for _ in range(5):
    post(body(warm))
subprocess.run(["callgrind_control", "-z"], check=True, capture_output=True)
rnd = random.Random(11)
for _ in range(n):
    post(body(rnd))
subprocess.run(["callgrind_control", "-d"], check=True, capture_output=True)
dumps = [f for f in glob.glob(f"{out}/callgrind.*") if f.endswith(".1")]
total = next(int(l.split()[1]) for l in open(dumps[0]) if l.startswith("summary:"))
print(f"{query}: {total / n / 1e6:.2f} M instructions per request ({n} requests, {total:,} in all)")
PY
