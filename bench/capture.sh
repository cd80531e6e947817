#!/usr/bin/env bash
# First-party capture under load (BENCHMARKS.md, "Capture"): wrk against POST /t/e (page views
# of 100,000 anonymous visitors) and GET /t/c/{token} (personal mailing links of 1,000 leads, so
# every human click is a touchpoint with scores and credits), CONNS connections for DURATION
# seconds. Prints wrk's rate and latency, the processor's largest lag during the run
# (ingestStatus.lagSeconds, sampled every 0.5 s) and how long it took to drain after the run.
#
#   bench/capture.sh                                  # SQLite file under $WORK
#   DB=postgres://postgres@127.0.0.1:5432/capture REPLICAS=2 bench/capture.sh
#   NATS=nats://127.0.0.1:4222 bench/capture.sh      # the JetStream inbox (a stream of its own)
#
# Knobs: BIN (release binary), WORK (/tmp/capture-bench), DB, REPLICAS (1; PostgreSQL only),
#        CONNS (64), THREADS (2), DURATION (30), TARGETS ("events clicks"), NATS (none: the
#        database's inbox table).
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(dirname "$HERE")
BIN=${BIN:-${CARGO_TARGET_DIR:-$ROOT/target}/release/closedloop}
WORK=${WORK:-/tmp/capture-bench}
DB=${DB:-sqlite://$WORK/closedloop.db?mode=rwc}
REPLICAS=${REPLICAS:-1}
CONNS=${CONNS:-64}
THREADS=${THREADS:-2}
DURATION=${DURATION:-30}
TARGETS=${TARGETS:-"events clicks"}
log() { echo "[$(date +%H:%M:%S)] $*" >&2; }
PIDS=()
INGEST=()
STREAM=""
if [ -n "${NATS:-}" ]; then
  STREAM="capture_bench_$(date +%s)"
  INGEST=(--ingest "$NATS/$STREAM")
fi
# Deletes the run's stream through the JetStream API, in NATS's text protocol.
delete_stream() {
  local hostport=${NATS#nats://}
  exec 3<>"/dev/tcp/${hostport%:*}/${hostport##*:}" || return 0
  printf 'CONNECT {"verbose":false}\r\nSUB _INBOX.bench 1\r\nPUB $JS.API.STREAM.DELETE.%s _INBOX.bench 0\r\n\r\n' "$STREAM" >&3
  timeout 5 grep -m1 -q '^MSG _INBOX.bench' <&3 || true
  exec 3>&-
}
cleanup() {
  for p in "${PIDS[@]:-}"; do [ -n "$p" ] && kill "$p" 2>/dev/null || true; done
  if [ -n "$STREAM" ]; then sleep 0.5; delete_stream; fi
}
trap cleanup EXIT
command -v wrk >/dev/null || { apt-get update -qq && apt-get install -y -qq wrk; }

rm -rf "$WORK" && mkdir -p "$WORK"
if [[ "$DB" == postgres* ]]; then
  admin="${DB%/*}/postgres"; name="${DB##*/}"
  psql "$admin" -qc "DROP DATABASE IF EXISTS $name" -c "CREATE DATABASE $name"
fi
"$BIN" workspace create Bench --database-url "$DB" >/dev/null
KEY=$("$BIN" key create --workspace Bench --role ADMIN --database-url "$DB")
URLS=()
for r in $(seq 1 "$REPLICAS"); do
  port=$((18600 + r))
  "$BIN" serve --bind "127.0.0.1:$port" --database-url "$DB" --hits-per-visitor 1000000 --hits-per-site-key 1000000 \
    "${INGEST[@]}" >"$WORK/serve$r.log" 2>&1 &
  PIDS+=($!)
  URLS+=("http://127.0.0.1:$port")
done
for u in "${URLS[@]}"; do
  for _ in $(seq 1 100); do curl -sf "$u/readyz" >/dev/null && break; sleep 0.1; done
done
API=${URLS[0]}
# A PostgreSQL without autovacuum (this machine's runs with it off) never gathers statistics on
# the tables the run fills, and plans for the empty tables they were: analyze every 10 s, as
# autovacuum would.
if [[ "$DB" == postgres* ]] && [ "$(psql "$DB" -Atc 'show autovacuum')" = off ]; then
  log "autovacuum is off: ANALYZE every 10 s in its place"
  ( while true; do sleep 10; psql "$DB" -qc ANALYZE 2>/dev/null || true; done ) &
  PIDS+=($!)
fi
gql() { curl -sf "$API/graphql" -H "Authorization: Bearer $KEY" -H 'Content-Type: application/json' -d "$1"; }
q() { python3 -c 'import json,sys; print(json.dumps({"query": sys.argv[1]}))' "$1"; }
gql "$(q 'mutation { createScoringModel(input: { name: "Default" }) { userErrors { code } } }')" >/dev/null
gql "$(q 'mutation { createCampaign(input: { name: "Bench", channel: "EMAIL", kind: "NURTURE", trackingCode: "bench" }) { campaign { id } } }')" >"$WORK/campaign.json"
CAMPAIGN=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["data"]["createCampaign"]["campaign"]["id"])' "$WORK/campaign.json")
SITE_KEY=$(gql "$(q '{ trackingSettings { siteKey } }')" | python3 -c 'import json,sys; print(json.load(sys.stdin)["data"]["trackingSettings"]["siteKey"])')
# 1,000 leads and a personal link each, sent an hour ago (so no click is a scanner's).
python3 - "$API" "$KEY" "$CAMPAIGN" "$WORK/paths.txt" <<'PY'
import json, sys, urllib.request, datetime
api, key, campaign, out = sys.argv[1:]
def gql(query, variables=None):
    req = urllib.request.Request(f"{api}/graphql", json.dumps({"query": query, "variables": variables or {}}).encode(),
        {"Authorization": f"Bearer {key}", "Content-Type": "application/json"})
    r = json.load(urllib.request.urlopen(req))
    assert "errors" not in r, r
    return r["data"]
leads = []
for i in range(1000):
    leads.append(gql("mutation($i: UpsertLeadInput!) { upsertLead(input: $i) { lead { id } } }",
        {"i": {"email": f"bench{i}@example.com"}})["upsertLead"]["lead"]["id"])
link = gql("mutation($i: CreateTrackingLinkInput!) { createTrackingLink(input: $i) { trackingLink { id } } }",
    {"i": {"campaignId": campaign, "destination": "https://www.example.com/offer"}})["createTrackingLink"]["trackingLink"]["id"]
sent = (datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(hours=1)).isoformat()
urls = gql("query($l: ID!, $leads: [ID!]!, $at: DateTime) { node(id: $l) { ... on TrackingLink { personal(leadIds: $leads, sentAt: $at) { url } } } }",
    {"l": link, "leads": leads, "at": sent})["node"]["personal"]
with open(out, "w") as f:
    for u in urls:
        f.write("/" + u["url"].split("/", 3)[3] + "\n")
PY

status() { gql "$(q '{ ingestStatus { acknowledged processed lagSeconds } }')"; }
for target in $TARGETS; do
  case $target in
    events) script="$HERE/capture_events.lua"; path=/t/e ;;
    clicks) script="$HERE/capture_clicks.lua"; path=/t/c ;;
  esac
  log "$target: wrk -c$CONNS -t$THREADS -d${DURATION}s on ${#URLS[@]} replica(s)"
  : >"$WORK/lag.txt"
  ( while true; do status | python3 -c 'import json,sys; print(json.load(sys.stdin)["data"]["ingestStatus"]["lagSeconds"])' >>"$WORK/lag.txt" 2>/dev/null || true; sleep 0.5; done ) &
  sampler=$!
  per=$((CONNS / ${#URLS[@]}))
  wpids=()
  r=0
  for u in "${URLS[@]}"; do
    r=$((r + 1))
    REPLICA=$r SITE_KEY=$SITE_KEY PATHS="$WORK/paths.txt" wrk -c"$per" -t"$THREADS" -d"${DURATION}s" --latency -s "$script" "$u" >"$WORK/wrk-$target-${u##*:}.txt" 2>&1 &
    wpids+=($!)
  done
  wait "${wpids[@]}"
  ended=$(date +%s.%N)
  while true; do
    s=$(status)
    done_=$(echo "$s" | python3 -c 'import json,sys; d=json.load(sys.stdin)["data"]["ingestStatus"]; print(int(d["processed"] == d["acknowledged"]))')
    [ "$done_" = 1 ] && break
    sleep 0.1
  done
  drained=$(python3 -c "import time; print(round(time.time() - $ended, 2))")
  kill "$sampler" 2>/dev/null || true; wait "$sampler" 2>/dev/null || true
  for f in "$WORK"/wrk-"$target"-*.txt; do grep RESULT "$f" | sed "s|^|$target ${f##*-} |"; done
  echo "$target lag_max_s=$(sort -g "$WORK/lag.txt" | tail -1) drained_after_s=$drained $(status)"
done
