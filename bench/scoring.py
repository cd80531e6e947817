#!/usr/bin/env python3
"""Lead-scoring workloads through the GraphQL API of a running closedloop server.

Driven by bench/scoring.sh (which builds, imports the M dataset, serves a fresh copy of the
database and creates a MARKETING key); can be run by hand against any server:

    python3 bench/scoring.py --url http://127.0.0.1:8321/graphql --key clk_... \
        --leads-csv /tmp/perf/import/M/leads.csv --phase full --server-pid PID

Phases (each expects a fresh copy of the imported database):
  baseline  W3 only, without any scoring model: 5 batches of recordTouchpoints.
  full      W1 createScoringModel + updateScoringModel x3; W2 scoringMatrix (no filter, and
            filtered by a persona); W3 the same 5 batches of recordTouchpoints with the model
            present; W2 again after the batches (cells then include active leads).
  record    W3 only, against whatever models the database holds (to profile the write path on
            a copy of a database that a full phase left behind).

Every workload prints /proc/loadavg before and after, and the CPU used by other processes
(cores, from /proc/stat minus the server's and this script's CPU) while it ran.
Only the standard library is used (http.client, time.perf_counter).
"""
import argparse
import csv
import http.client
import json
import os
import random
import statistics
import sys
import time
import urllib.parse
from datetime import datetime, timedelta, timezone

CLK_TCK = os.sysconf("SC_CLK_TCK")
NCPU = os.cpu_count() or 1


# --------------------------------------------------------------------------- machine load
def loadavg():
    with open("/proc/loadavg") as f:
        return " ".join(f.read().split()[:3])


def total_busy_ticks():
    with open("/proc/stat") as f:
        parts = f.readline().split()[1:]
    v = [int(x) for x in parts]
    idle = v[3] + (v[4] if len(v) > 4 else 0)  # idle + iowait
    return sum(v[:8]) - idle


def proc_ticks(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            s = f.read()
        fields = s[s.rindex(")") + 2:].split()
        return int(fields[11]) + int(fields[12])  # utime + stime
    except (OSError, ValueError, IndexError):
        return 0


def thread_ticks(pid):
    """CPU ticks of a process's threads, summed by thread name (digits stripped): e.g. the
    tokio workers (GraphQL, decoding, scoring in Rust) and the sqlx SQLite workers (SQLite)."""
    out = {}
    try:
        tids = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return out
    for tid in tids:
        try:
            with open(f"/proc/{pid}/task/{tid}/stat") as f:
                s = f.read()
        except OSError:
            continue
        name = s[s.index("(") + 1:s.rindex(")")].rstrip("0123456789-_ ")
        fields = s[s.rindex(")") + 2:].split()
        out[name] = out.get(name, 0) + int(fields[11]) + int(fields[12])
    return out


class Load:
    """Load average and CPU split over one workload."""

    def __init__(self, server_pid):
        self.server_pid = server_pid

    def __enter__(self):
        self.la_before = loadavg()
        self.t0 = time.perf_counter()
        self.busy0 = total_busy_ticks()
        self.srv0 = proc_ticks(self.server_pid) if self.server_pid else 0
        self.me0 = proc_ticks(os.getpid())
        self.threads0 = thread_ticks(self.server_pid) if self.server_pid else {}
        return self

    def __exit__(self, *exc):
        wall = time.perf_counter() - self.t0
        busy = total_busy_ticks() - self.busy0
        srv = (proc_ticks(self.server_pid) - self.srv0) if self.server_pid else 0
        me = proc_ticks(os.getpid()) - self.me0
        t1 = thread_ticks(self.server_pid) if self.server_pid else {}
        self.threads = {k: (v - self.threads0.get(k, 0)) / CLK_TCK for k, v in t1.items() if v - self.threads0.get(k, 0) > 0}
        self.la_after = loadavg()
        self.wall = wall
        self.server_cores = srv / CLK_TCK / wall if wall > 0 else 0.0
        self.other_cores = max(0.0, (busy - srv - me) / CLK_TCK / wall) if wall > 0 else 0.0
        return False

    def line(self):
        return (f"load average before: {self.la_before} | after: {self.la_after} | "
                f"server CPU {self.server_cores:.2f} cores, other processes {self.other_cores:.2f} "
                f"of {NCPU} cores over {self.wall:.1f} s\n  server CPU seconds by thread: " +
                (", ".join(f"{k} {v:.2f}" for k, v in sorted(self.threads.items(), key=lambda kv: -kv[1])) or "-"))


# --------------------------------------------------------------------------- GraphQL client
class Client:
    def __init__(self, url, key, timeout=600):
        u = urllib.parse.urlsplit(url)
        self.host, self.port, self.path = u.hostname, u.port or 80, u.path or "/graphql"
        self.key = key
        self.timeout = timeout
        self.conn = None

    def _connect(self):
        self.conn = http.client.HTTPConnection(self.host, self.port, timeout=self.timeout)

    def post(self, query, variables=None):
        """Returns (seconds, parsed response). The time covers sending the request, the server's
        work and reading the whole response body; JSON parsing is not timed."""
        body = json.dumps({"query": query, "variables": variables or {}}).encode()
        headers = {
            "Content-Type": "application/json",
            "Authorization": f"Bearer {self.key}",
        }
        for attempt in (1, 2):
            if self.conn is None:
                self._connect()
            try:
                t0 = time.perf_counter()
                self.conn.request("POST", self.path, body, headers)
                resp = self.conn.getresponse()
                raw = resp.read()
                dt = time.perf_counter() - t0
                break
            except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError):
                self.conn.close()
                self.conn = None
                if attempt == 2:
                    raise
        if resp.status != 200:
            raise SystemExit(f"HTTP {resp.status}: {raw[:2000].decode(errors='replace')}")
        data = json.loads(raw)
        if data.get("errors"):
            raise SystemExit(f"GraphQL errors: {json.dumps(data['errors'])[:4000]}")
        return dt, data["data"]


def user_errors(payload, what):
    ue = payload.get("userErrors") or []
    if ue:
        raise SystemExit(f"{what}: userErrors {json.dumps(ue)[:4000]}")


def pct(values, p):
    """Nearest-rank percentile."""
    s = sorted(values)
    k = max(1, -(-len(s) * p // 100))  # ceil
    return s[int(k) - 1]


def ms(x):
    return f"{x * 1000:.1f}"


def table(header, rows):
    widths = [max(len(str(c)) for c in col) for col in zip(header, *rows)]
    fmt = lambda r: "| " + " | ".join(str(c).rjust(w) if i else str(c).ljust(w) for i, (c, w) in enumerate(zip(r, widths))) + " |"
    print(fmt(header))
    print("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    for r in rows:
        print(fmt(r))


# --------------------------------------------------------------------------- workloads
MODEL_FIELDS = """
  rescoredLeads handedOff
  scoringModel { id name version isDefault halfLifeDays
    activityBands { band1 band2 band3 } gradeBands { a b c } mqlCells }
  userErrors { field message code }
"""

CREATE = "mutation($input: ScoringModelInput!) { createScoringModel(input: $input) {" + MODEL_FIELDS + "} }"
UPDATE = "mutation($input: UpdateScoringModelInput!) { updateScoringModel(input: $input) {" + MODEL_FIELDS + "} }"


def model_input(industries):
    return {
        "name": "Bench fit x engagement",
        "description": "bench/scoring.py",
        "profileRules": [
            {"attribute": "jobTitle", "operator": "CONTAINS", "values": ["head", "director", "chief"], "points": 40},
            {"attribute": "employeeCount", "operator": "RANGE", "values": ["250", None], "points": 30},
            {"attribute": "industry", "operator": "IN", "values": industries, "points": 20},
        ],
        # activityRules absent: the default activity points; default grades 75/50/25,
        # bands 100/50/20, MQL cells A1 A2 B1, 30-day half-life.
    }


# Each update changes parameters (so every one re-scores all leads); the last one equals the first.
UPDATES = [
    {"halfLifeDays": "14", "activityBands": {"band1": 60, "band2": 30, "band3": 10}},
    {"halfLifeDays": "21", "activityBands": {"band1": 80, "band2": 40, "band3": 15}},
    {"halfLifeDays": "14", "activityBands": {"band1": 60, "band2": 30, "band3": 10}},
]


def w1_models(c, args, industries, results):
    print("\n== W1: createScoringModel / updateScoringModel over every lead ==")
    with Load(args.server_pid) as ld:
        inp = model_input(industries)
        dt, d = c.post(CREATE, {"input": inp})
        p = d["createScoringModel"]
        user_errors(p, "createScoringModel")
        m = p["scoringModel"]
        rows = [["createScoringModel", ms(dt), p["rescoredLeads"], p["handedOff"], m["version"],
                 m["halfLifeDays"], "{band1}/{band2}/{band3}".format(**m["activityBands"])]]
        results["create_s"] = dt
        results["create_rescored"] = p["rescoredLeads"]
        results["create_handed_off"] = p["handedOff"]
        model_id = m["id"]
        ups = []
        for i in range(args.update_runs):
            changes = UPDATES[i % len(UPDATES)]
            dt, d = c.post(UPDATE, {"input": {"id": model_id, "changes": changes}})
            p = d["updateScoringModel"]
            user_errors(p, "updateScoringModel")
            m = p["scoringModel"]
            ups.append((dt, p["rescoredLeads"], p["handedOff"]))
            rows.append([f"updateScoringModel #{i + 1}", ms(dt), p["rescoredLeads"], p["handedOff"], m["version"],
                         m["halfLifeDays"], "{band1}/{band2}/{band3}".format(**m["activityBands"])])
    print("profile rules: jobTitle CONTAINS head/director/chief 40, employeeCount RANGE [250, -] 30, "
          f"industry IN {industries} 20; default activity rules, grades 75/50/25, MQL cells A1 A2 B1")
    table(["request", "ms", "rescoredLeads", "handedOff", "version", "halfLifeDays", "bands"], rows)
    print(ld.line())
    results["updates"] = ups
    results["w1_load"] = ld.line()
    return model_id


MATRIX = "query($filter: LeadFilterInput) { scoringMatrix(filter: $filter) { total asOf cells { cell count } } }"


def w2_matrix(c, args, results, label, filt=None, expect_total=None):
    times = []
    last = None
    for _ in range(args.matrix_warmup):
        c.post(MATRIX, {"filter": filt})
    for _ in range(args.matrix_runs):
        dt, d = c.post(MATRIX, {"filter": filt})
        times.append(dt)
        last = d["scoringMatrix"]
    cells = {x["cell"]: x["count"] for x in last["cells"]}
    total = last["total"]
    s = sum(cells.values())
    nonzero = sum(1 for v in cells.values() if v)
    ok = s == total and (expect_total is None or total == expect_total)
    r = {
        "label": label, "min": min(times), "median": statistics.median(times), "p95": pct(times, 95),
        "max": max(times), "total": total, "nonzero": nonzero, "ok": ok,
        "cells": " ".join(f"{k}:{v}" for k, v in cells.items() if v),
    }
    results.setdefault("matrix", []).append(r)
    return r


def print_matrix(rows):
    table(["scoringMatrix", "runs", "min ms", "median ms", "p95 ms", "max ms", "total", "non-empty cells", "check"],
          [[r["label"], r["runs"], ms(r["min"]), ms(r["median"]), ms(r["p95"]), ms(r["max"]), r["total"], r["nonzero"],
            "ok" if r["ok"] else "MISMATCH"] for r in rows])
    for r in rows:
        print(f"  {r['label']}: {r['cells']}")


LEAD_COUNT = "{ leads(first: 1) { totalCount } }"
CREATE_PERSONA = """mutation($input: CreatePersonaInput!) { createPersona(input: $input) {
  persona { id name } userErrors { field message code } } }"""


def w2(c, args, results, tag, persona_id=None):
    print(f"\n== W2: scoringMatrix, {args.matrix_warmup} warm-up + {args.matrix_runs} timed requests ({tag}) ==")
    _, d = c.post(LEAD_COUNT)
    n_leads = d["leads"]["totalCount"]
    rows = []
    with Load(args.server_pid) as ld:
        r = w2_matrix(c, args, results, f"no filter, {tag}", None, n_leads)
        r["runs"] = args.matrix_runs
        rows.append(r)
        if persona_id:
            r = w2_matrix(c, args, results, f"filter persona, {tag}", {"persona": persona_id})
            r["runs"] = args.matrix_runs
            rows.append(r)
    print(f"non-erased leads (leads.totalCount): {n_leads}")
    print_matrix(rows)
    print(ld.line())
    results.setdefault("w2_load", []).append(ld.line())


def make_persona(c, args, industries, results):
    inp = {"name": "Bench persona", "matchThreshold": 60, "criteria": [
        {"attribute": "jobTitle", "operator": "CONTAINS", "values": ["head", "director", "chief"], "weight": 50},
        {"attribute": "industry", "operator": "IN", "values": industries, "weight": 30},
        {"attribute": "employeeCount", "operator": "RANGE", "values": ["250", None], "weight": 20},
    ]}
    dt, d = c.post(CREATE_PERSONA, {"input": inp})
    p = d["createPersona"]
    user_errors(p, "createPersona")
    pid = p["persona"]["id"]
    _, d = c.post("query($f: LeadFilterInput) { leads(first: 1, filter: $f) { totalCount } }", {"f": {"persona": pid}})
    members = d["leads"]["totalCount"]
    print(f"createPersona (50 jobTitle, 30 industry, 20 employeeCount; threshold 60): {ms(dt)} ms, {members} members")
    results["persona_s"] = dt
    results["persona_members"] = members
    return pid


RECORD = """mutation($input: RecordTouchpointsInput!) { recordTouchpoints(input: $input) {
  recordedCount duplicateCount userErrors { field message code } } }"""
HANDOFFS = "{ handoffs(first: 1) { totalCount } }"

# Default touchpoint types with rough real-world frequencies.
TOUCH_TYPES = [("PAGE_VIEW", 30), ("EMAIL_OPEN", 25), ("EMAIL_CLICK", 15), ("AD_CLICK", 10),
               ("WHITEPAPER_DOWNLOAD", 6), ("WEBINAR_REGISTER", 5), ("WEBINAR_ATTEND", 4), ("FORM_SUBMIT", 5)]


def make_batches(args, lead_ids, campaign_ids, now):
    """Deterministic (seeded) batches; only occurredAt depends on `now`. Each batch gives two
    touchpoints to each of the same `leads_per_batch` leads (a set of active leads)."""
    rng = random.Random(args.seed)
    chosen = rng.sample(lead_ids, args.leads_per_batch)
    per_lead = args.batch_size // args.leads_per_batch
    types = [t for t, _ in TOUCH_TYPES]
    weights = [w for _, w in TOUCH_TYPES]
    batches = []
    for b in range(args.batches):
        items = []
        for lead in chosen:
            for k in range(per_lead):
                item = {
                    "leadExternalId": lead,
                    "type": rng.choices(types, weights)[0],
                    "occurredAt": (now - timedelta(seconds=rng.randrange(1, 86_400))).strftime("%Y-%m-%dT%H:%M:%SZ"),
                    "idempotencyKey": f"bench-{args.run_id}-{b}-{lead}-{k}",
                }
                if rng.random() < 0.5:
                    item["campaignExternalId"] = rng.choice(campaign_ids)
                items.append(item)
        rng.shuffle(items)
        batches.append(items[: args.batch_size])
    return batches, len(chosen)


def w3(c, args, results, lead_ids, campaign_ids, tag):
    now = datetime.now(timezone.utc)
    batches, n_chosen = make_batches(args, lead_ids, campaign_ids, now)
    print(f"\n== W3: recordTouchpoints, {args.batches} batches of {args.batch_size} ({tag}) ==")
    print(f"each batch: 2 touchpoints for each of the same {n_chosen} leads (by leadExternalId), "
          f"occurredAt within the day before {now:%Y-%m-%dT%H:%M:%SZ}, ~half with campaignExternalId, "
          f"every item with a new idempotencyKey")
    _, d = c.post(HANDOFFS)
    h_prev = d["handoffs"]["totalCount"]
    rows = []
    rates = []
    with Load(args.server_pid) as ld:
        for i, items in enumerate(batches):
            dt, d = c.post(RECORD, {"input": {"items": items}})
            p = d["recordTouchpoints"]
            user_errors(p, "recordTouchpoints")
            if p["recordedCount"] != len(items):
                raise SystemExit(f"batch {i + 1}: recordedCount {p['recordedCount']} != {len(items)}")
            _, d = c.post(HANDOFFS)
            h = d["handoffs"]["totalCount"]
            rate = len(items) / dt
            rates.append(rate)
            rows.append([f"batch {i + 1}", ms(dt), p["recordedCount"], p["duplicateCount"], f"{rate:,.0f}", h - h_prev])
            h_prev = h
    rows.append(["median", ms(statistics.median([len(b) / r for b, r in zip(batches, rates)])), "", "",
                 f"{statistics.median(rates):,.0f}", ""])
    table(["recordTouchpoints", "ms", "recordedCount", "duplicateCount", "touchpoints/s", "new handoffs"], rows)
    print(ld.line())
    results.setdefault("w3", {})[tag] = {"rates": rates, "median": statistics.median(rates), "load": ld.line(),
                                         "handoffs": [r[5] for r in rows[:-1]]}


LEAD_SCORE = """query($x: String!) { leadByExternalId(externalId: $x) {
  score { profileScore activityScore cell } } }"""


def spot_check(c, args, lead_ids):
    rng = random.Random(args.seed)
    chosen = rng.sample(lead_ids, args.leads_per_batch)
    out = []
    for x in chosen[:3]:
        _, d = c.post(LEAD_SCORE, {"x": x})
        s = d["leadByExternalId"]["score"]
        out.append(f"{x}: profile {s['profileScore']}, activity {s['activityScore']:.1f}, {s['cell']}")
    print("lead.score of 3 of the active leads after the batches: " + "; ".join(out))


def read_ids(path, col):
    with open(path, newline="") as f:
        return [row[col] for row in csv.DictReader(f)]


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--url", required=True)
    ap.add_argument("--key", required=True)
    ap.add_argument("--import-dir", default="/tmp/perf/import/M")
    ap.add_argument("--phase", choices=["baseline", "full", "record"], required=True)
    ap.add_argument("--server-pid", type=int, default=0)
    ap.add_argument("--update-runs", type=int, default=3)
    ap.add_argument("--matrix-warmup", type=int, default=3)
    ap.add_argument("--matrix-runs", type=int, default=50)
    ap.add_argument("--batches", type=int, default=5)
    ap.add_argument("--batch-size", type=int, default=10_000)
    ap.add_argument("--leads-per-batch", type=int, default=5_000)
    ap.add_argument("--industries", default="Manufacturing,Software")
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--run-id", default=str(int(time.time())))
    ap.add_argument("--json-out", default="")
    args = ap.parse_args()

    lead_ids = read_ids(os.path.join(args.import_dir, "leads.csv"), "id")
    campaign_ids = read_ids(os.path.join(args.import_dir, "campaigns.csv"), "id")
    industries = [s.strip() for s in args.industries.split(",") if s.strip()]
    c = Client(args.url, args.key)
    _, d = c.post("{ viewer { role workspace { name } } }")
    print(f"server {args.url}, key role {d['viewer']['role']}, workspace {d['viewer']['workspace']['name']}, "
          f"server pid {args.server_pid or '?'}; {NCPU} cores")
    results = {"phase": args.phase}

    if args.phase == "baseline":
        _, d = c.post("{ scoringModels { id } }")
        if d["scoringModels"]:
            raise SystemExit("baseline phase needs a database without scoring models")
        w3(c, args, results, lead_ids, campaign_ids, "no scoring model")
    elif args.phase == "record":
        _, d = c.post("{ scoringModels { id } }")
        w3(c, args, results, lead_ids, campaign_ids, f"{len(d['scoringModels'])} scoring model(s)")
    else:
        w1_models(c, args, industries, results)
        persona_id = make_persona(c, args, industries, results)
        w2(c, args, results, "before the touchpoint batches", persona_id)
        w3(c, args, results, lead_ids, campaign_ids, "with the scoring model")
        spot_check(c, args, lead_ids)
        w2(c, args, results, "after the touchpoint batches", persona_id)

    if args.json_out:
        with open(args.json_out, "w") as f:
            json.dump(results, f, indent=1, default=str)


if __name__ == "__main__":
    main()
