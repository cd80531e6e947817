#!/usr/bin/env python3
"""KPI and ledger workloads through the GraphQL API of a running closedloop server (M dataset).

    python3 bench/kpis.py --url http://127.0.0.1:8398/graphql --key clk_... [--runs 10]

Every query is timed two ways:
  cold    before each run (untimed) one write bumps the workspace's data revision (a campaign's
          name is toggled and restored), so nothing is served from the report cache, not even
          the shared stage history; each run also asks for a range one second longer;
  cached  the same query again and again: the report cache answers after one read of the
          workspace's data revision.
Workloads (range 2000-01-01 .. 2100-01-01, every deal):
  ledger   attribution(LINEAR, groupBy: CAMPAIGN) from the ledger;
  compute  attribution(W_SHAPED, groupBy: CAMPAIGN, source: COMPUTE): every path read and credited;
  markov   attribution(MARKOV, groupBy: CHANNEL): every journey read, the chain solved;
  rpm      the full rpm query (conversion, flow, velocity, value, reach, ROI);
  perf50   campaigns(first: 50) { performance(range) { ... } } (the ROI row of each campaign);
  perf50x  the same with the activity fields (leads touched, influenced, pipeline, e-mail);
  A3       funnelSnapshot (leads per current stage, reached, conversion from the previous);
  A4       velocity { salesCycle } (sales-cycle length of the deals closed in the range);
  A5       campaignRoi (ROI per campaign, LINEAR).
  ledger:KIND, compute:KIND
           attribution(KIND, groupBy: CAMPAIGN) with source LEDGER / COMPUTE, for any rule-based
           model (FIRST_TOUCH LAST_TOUCH LINEAR TIME_DECAY POSITION_BASED W_SHAPED FULL_PATH CUSTOM).
Timing: time.perf_counter around sending the request and reading the whole body; one keep-alive
connection; standard library only.
"""
import argparse
import http.client
import json
import statistics
import time
import urllib.parse

RPM = """query($r: DateTimeRangeInput!) { rpm(range: $r) {
  conversion { cohort converted rate } flow { inflow toNext toSide balanceFrom balanceTo }
  velocity { stages { moves medianDays meanDays } leadToCustomer { medianDays }
    salesCycle { won lost open medianDays meanDays winRate salesVelocity { amount } } }
  value { stages { probability value { amount } leads } databaseValue { amount } }
  reach { leads channels { channel reachable share } personas { leads channels { reachable } } }
  roi { total { revenue { amount } costs { amount } roi } channels { channel figures { roi } }
    campaigns { campaign { id } figures { roi } leadsSourced mqls costPerLead { amount } costPerOrder { amount } } } } }"""
QUERIES = {
    "ledger": """query($r: DateTimeRangeInput!) { attribution(model: { kind: LINEAR }, range: $r, groupBy: CAMPAIGN) {
        source rows { key revenue { amount } conversions touchpoints deals } totals { revenue { amount } deals } } }""",
    "compute": """query($r: DateTimeRangeInput!) { attribution(model: { kind: W_SHAPED }, range: $r, groupBy: CAMPAIGN, source: COMPUTE) {
        source rows { key revenue { amount } } totals { revenue { amount } deals } } }""",
    "markov": """query($r: DateTimeRangeInput!) { attribution(model: { kind: MARKOV }, range: $r, groupBy: CHANNEL) {
        rows { key revenue { amount } conversions } totals { revenue { amount } deals } } }""",
    "rpm": RPM,
    "perf50": """query($r: DateTimeRangeInput!) { campaigns(first: 50) { nodes { id performance(range: $r) {
        figures { revenue { amount } costs { amount } roi } conversions leadsSourced mqls costPerLead { amount }
        costPerOrder { amount } forecastRatio } } } }""",
    "perf50x": """query($r: DateTimeRangeInput!) { campaigns(first: 50) { nodes { id performance(range: $r) {
        figures { revenue { amount } costs { amount } roi } costsByCategory { category amount { amount } } leadsSourced
        sqls leadsTouched opportunitiesInfluenced openPipeline { amount } dealsWon
        email { sent delivered uniqueOpens openRate } } } } }""",
    "A3": """query { funnelSnapshot { stage { key } leads reached conversionFromPrevious } }""",
    "A4": """query($r: DateTimeRangeInput!) { velocity(range: $r) { salesCycle { won lost medianDays meanDays winRate } } }""",
    "A5": """query($r: DateTimeRangeInput!) { campaignRoi(range: $r) { campaigns { campaign { id } figures { revenue { amount } costs { amount } roi } } } }""",
}


def query_of(name):
    if ":" not in name:
        return QUERIES[name]
    source, kind = name.split(":")
    source = {"ledger": "LEDGER", "compute": "COMPUTE"}[source]
    return ("query($r: DateTimeRangeInput!) { attribution(model: { kind: %s }, range: $r, groupBy: CAMPAIGN, source: %s) {"
            " source rows { key revenue { amount } conversions touchpoints deals } totals { revenue { amount } deals } } }"
            % (kind, source))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--url", default="http://127.0.0.1:8398/graphql")
    ap.add_argument("--key", required=True)
    ap.add_argument("--runs", type=int, default=10, help="cold runs per workload")
    ap.add_argument("--cached-runs", type=int, default=30)
    ap.add_argument("--only", default=" ".join(QUERIES))
    a = ap.parse_args()
    u = urllib.parse.urlparse(a.url)
    conn = http.client.HTTPConnection(u.hostname, u.port, timeout=600)
    headers = {"content-type": "application/json", "authorization": f"Bearer {a.key}"}
    second = [0]

    def post(query, r, variables=None):
        body = json.dumps({"query": query, "variables": variables or {"r": r}})
        t = time.perf_counter()
        conn.request("POST", u.path, body, headers)
        data = conn.getresponse().read()
        took = time.perf_counter() - t
        out = json.loads(data)
        if out.get("errors"):
            raise SystemExit(f"errors: {out['errors']}")
        return took, len(data)

    def fresh_range():
        second[0] += 1
        return {"from": "2000-01-01T00:00:00Z", "to": f"2100-01-01T00:{second[0] // 60 % 60:02d}:{second[0] % 60:02d}Z"}

    conn.request("POST", u.path, json.dumps({"query": "{ campaigns(first: 1) { nodes { id name } } }"}), headers)
    first = json.loads(conn.getresponse().read())["data"]["campaigns"]["nodes"][0]
    rename = "mutation($input: UpdateCampaignInput!) { updateCampaign(input: $input) { userErrors { code } } }"

    def invalidate():
        for name in (first["name"] + " (bench)", first["name"]):
            post(rename, None, {"input": {"id": first["id"], "name": name}})

    def cold_run(q):
        invalidate()
        return post(q, fresh_range())[0]

    print(f"{'workload':22} {'cold median ms':>15} {'cold max ms':>12} {'cached median ms':>17} {'cached p95 ms':>14} {'bytes':>8}")
    for name in a.only.split():
        q = query_of(name)
        post(q, fresh_range())  # warm the process (pages, plans), not the report cache
        cold = [cold_run(q) for _ in range(a.runs)]
        r = fresh_range()
        _, size = post(q, r)
        cached = sorted(post(q, r)[0] for _ in range(a.cached_runs))
        p95 = cached[int(len(cached) * 0.95) - 1]
        print(f"{name:22} {statistics.median(cold) * 1e3:15.1f} {max(cold) * 1e3:12.1f} "
              f"{statistics.median(cached) * 1e3:17.2f} {p95 * 1e3:14.2f} {size:8}")


if __name__ == "__main__":
    main()
