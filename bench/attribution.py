#!/usr/bin/env python3
"""Attribution workloads through the GraphQL API of a running closedloop server (M dataset).

Driven by bench/attribution.sh (which builds, imports the M dataset, serves a copy of the
database and creates an ANALYST key); can be run by hand against any server:

    python3 bench/attribution.py --url http://127.0.0.1:8398/graphql --key clk_... \
        --data-dir /tmp/perf/data/M --server-pid PID

Over the range 2000-01-01 .. 2100-01-01 (every deal):
  ledger   `attribution(model:{kind:K}, groupBy:CAMPAIGN)` for the 8 rule-based models from the
           ledger (default source; the response's `source` must be LEDGER), 3 warm-up + 30 timed
           (median, p95); LINEAR also grouped by CHANNEL.
  compute  the same with `source: COMPUTE`, 1 warm-up + 5 timed (median, max).
  markov   MARKOV grouped by CHANNEL and CAMPAIGN, 1 warm-up + 3 timed (median, max).
  checks   every report: totals.deals == the won deals of opportunities.csv, totals.revenue == their
           amounts' sum, the rows' revenue sums to totals.revenue. LINEAR, FIRST_TOUCH and
           LAST_TOUCH by CAMPAIGN against the semantics of /work/shared/bench/sql/a1 and a2
           (computed here exactly, with integers and fractions, from the gen.py CSVs).

A second mode compares `closedloop markov-paths` with bench/markov_reference.py on the same paths:

    python3 bench/attribution.py --compare-markov OURS.txt REFERENCE.csv

Timing: time.perf_counter around sending the request and reading the whole body (JSON parsing
not timed); one keep-alive connection. Only the standard library is used.
"""
import argparse
import csv
import http.client
import json
import os
import statistics
import sys
import time
import urllib.parse
from collections import defaultdict
from datetime import datetime, timedelta
from decimal import Decimal
from fractions import Fraction

CLK_TCK = os.sysconf("SC_CLK_TCK")
NCPU = os.cpu_count() or 1
RULES = ["FIRST_TOUCH", "LAST_TOUCH", "LINEAR", "TIME_DECAY", "POSITION_BASED", "W_SHAPED", "FULL_PATH", "CUSTOM"]
RANGE = {"from": "2000-01-01T00:00:00Z", "to": "2100-01-01T00:00:00Z"}
FIELDS = ("source modelVersion totals { revenue { amount } conversions deals unattributed { amount } } "
          "rows { key revenue { amount } conversions touchpoints deals }")
QUERY = ("query($model: AttributionModelInput!, $range: DateTimeRangeInput!, $groupBy: AttributionGrouping!, "
         "$source: AttributionSourceChoice) { attribution(model: $model, range: $range, groupBy: $groupBy, "
         "source: $source) { " + FIELDS + " } }")
# The same plus each row's campaign external ID (gen.py's campaign id), for the reference checks; not timed.
QUERY_EXT = QUERY.replace("rows { key", "rows { campaign { externalId } key")


# --------------------------------------------------------------------------- machine load
def loadavg():
    with open("/proc/loadavg") as f:
        return " ".join(f.read().split()[:3])


def total_busy_ticks():
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:]]
    return sum(v[:8]) - (v[3] + (v[4] if len(v) > 4 else 0))


def proc_ticks(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            s = f.read()
        fields = s[s.rindex(")") + 2:].split()
        return int(fields[11]) + int(fields[12])
    except (OSError, ValueError, IndexError):
        return 0


class Load:
    """Load average and the CPU used by the server and by other processes over one workload."""

    def __init__(self, server_pid):
        self.server_pid = server_pid

    def __enter__(self):
        self.la_before = loadavg()
        self.t0 = time.perf_counter()
        self.busy0 = total_busy_ticks()
        self.srv0 = proc_ticks(self.server_pid) if self.server_pid else 0
        self.me0 = proc_ticks(os.getpid())
        return self

    def __exit__(self, *exc):
        self.wall = time.perf_counter() - self.t0
        busy = total_busy_ticks() - self.busy0
        srv = (proc_ticks(self.server_pid) - self.srv0) if self.server_pid else 0
        me = proc_ticks(os.getpid()) - self.me0
        self.server_cores = srv / CLK_TCK / self.wall if self.wall > 0 else 0.0
        self.other_cores = max(0.0, (busy - srv - me) / CLK_TCK / self.wall) if self.wall > 0 else 0.0
        self.la_after = loadavg()
        return False

    def line(self):
        return (f"load average before: {self.la_before} | after: {self.la_after} | server CPU "
                f"{self.server_cores:.2f} cores, other processes {self.other_cores:.2f} of {NCPU} cores "
                f"over {self.wall:.1f} s")


# --------------------------------------------------------------------------- GraphQL client
class Client:
    def __init__(self, url, key, timeout=900):
        u = urllib.parse.urlsplit(url)
        self.host, self.port, self.path = u.hostname, u.port or 80, u.path or "/graphql"
        self.key = key
        self.timeout = timeout
        self.conn = None

    def post(self, query, variables=None):
        """(seconds, data): the time covers sending, the server's work and reading the body."""
        body = json.dumps({"query": query, "variables": variables or {}}).encode()
        headers = {"Content-Type": "application/json", "Authorization": f"Bearer {self.key}"}
        for attempt in (1, 2):
            if self.conn is None:
                self.conn = http.client.HTTPConnection(self.host, self.port, timeout=self.timeout)
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
        return dt, data["data"], len(raw)


def pct(values, p):
    """Nearest-rank percentile."""
    s = sorted(values)
    k = max(1, -(-len(s) * p // 100))
    return s[int(k) - 1]


def table(header, rows):
    widths = [max(len(str(c)) for c in col) for col in zip(header, *rows)]
    fmt = lambda r: "| " + " | ".join(str(c).rjust(w) if i else str(c).ljust(w) for i, (c, w) in enumerate(zip(r, widths))) + " |"
    print(fmt(header))
    print("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    for r in rows:
        print(fmt(r))


def cents(amount):
    return int((Decimal(amount) * 100).to_integral_exact())


# --------------------------------------------------------------------------- reference (CSV)
def parse_ts(s):
    return datetime.strptime(s, "%Y-%m-%d %H:%M:%S")


class Reference:
    """Won deals and their paths as /work/shared/bench/sql/a1 and a2 define them: the touches of
    every contact of a won opportunity with closed_at - 365 days <= occurred_at < closed_at."""

    def __init__(self, data_dir):
        t0 = time.perf_counter()
        self.won = {}
        with open(os.path.join(data_dir, "opportunities.csv"), newline="") as f:
            for r in csv.DictReader(f):
                if r["status"] == "won":
                    self.won[int(r["id"])] = (cents(r["amount"]), parse_ts(r["closed_at"]))
        self.deals = len(self.won)
        self.revenue_cents = sum(a for a, _ in self.won.values())
        contacts = defaultdict(list)
        leads = set()
        with open(os.path.join(data_dir, "opportunity_contacts.csv"), newline="") as f:
            for r in csv.DictReader(f):
                o = int(r["opportunity_id"])
                if o in self.won:
                    contacts[o].append(int(r["lead_id"]))
                    leads.add(int(r["lead_id"]))
        by_lead = defaultdict(list)
        with open(os.path.join(data_dir, "touchpoints.csv"), newline="") as f:
            for r in csv.DictReader(f):
                lead = int(r["lead_id"])
                if lead in leads:
                    by_lead[lead].append((r["occurred_at"], int(r["id"]), r["campaign_id"] or None))
        self.paths = {}
        for o, (amount, closed) in self.won.items():
            lo = (closed - timedelta(days=365)).strftime("%Y-%m-%d %H:%M:%S")
            hi = closed.strftime("%Y-%m-%d %H:%M:%S")
            tps = [t for lead in contacts[o] for t in by_lead.get(lead, ()) if lo <= t[0] < hi]
            tps.sort()
            self.paths[o] = tps
        self.seconds = time.perf_counter() - t0

    def linear(self):
        """campaign external id -> exact credited revenue in cents (a Fraction)."""
        out = defaultdict(Fraction)
        for o, tps in self.paths.items():
            if not tps:
                continue
            amount = self.won[o][0]
            n = len(tps)
            per = defaultdict(int)
            for _, _, c in tps:
                per[c] += 1
            for c, k in per.items():
                out[c] += Fraction(amount * k, n)
        return out

    def first_last(self, last):
        """campaign -> cents under first (last) touch; ties on time broken by touchpoint id."""
        out = defaultdict(Fraction)
        for o, tps in self.paths.items():
            if tps:
                out[(tps[-1] if last else tps[0])[2]] += self.won[o][0]
        return out


def compare_campaigns(report, exact, label):
    """Max |ours - exact| in cents over campaigns; also vs the SQL output (rounded to cents)."""
    ours = {}
    for r in report["rows"]:
        if r["key"] == "UNATTRIBUTED":
            continue
        ext = (r.get("campaign") or {}).get("externalId")  # None: NO_CAMPAIGN
        ours[ext] = cents(r["revenue"]["amount"])
    keys = set(ours) | set(exact)
    worst, worst_key, nonzero, total_abs = Fraction(0), None, 0, Fraction(0)
    worst_sql = 0
    for k in keys:
        d = abs(Fraction(ours.get(k, 0)) - exact.get(k, Fraction(0)))
        total_abs += d
        sql_rounded = round(exact.get(k, Fraction(0)))  # the SQL's ROUND(..., 2), in cents
        worst_sql = max(worst_sql, abs(ours.get(k, 0) - sql_rounded))
        if sql_rounded != ours.get(k, 0):
            nonzero += 1
        if d > worst:
            worst, worst_key = d, k
    print(f"  {label}: {len(keys)} campaigns; max |ours - exact| = {float(worst):.4f} cents (campaign {worst_key}); "
          f"sum of |diff| = {float(total_abs):.2f} cents; vs the SQL's cent-rounded sums: max {worst_sql} cents, "
          f"{nonzero} campaigns differ")
    return {"campaigns": len(keys), "max_diff_cents": float(worst), "max_diff_campaign": worst_key,
            "sum_abs_diff_cents": float(total_abs), "max_diff_vs_sql_rounded_cents": worst_sql,
            "campaigns_differing_from_sql": nonzero}


# --------------------------------------------------------------------------- checks
def check_report(rep, ref, what, failures):
    t = rep["totals"]
    rows_sum = sum(cents(r["revenue"]["amount"]) for r in rep["rows"])
    total = cents(t["revenue"]["amount"])
    conv = sum(Decimal(r["conversions"]) for r in rep["rows"])
    problems = []
    if t["deals"] != ref.deals:
        problems.append(f"totals.deals {t['deals']} != {ref.deals}")
    if total != ref.revenue_cents:
        problems.append(f"totals.revenue {total / 100:.2f} != {ref.revenue_cents / 100:.2f}")
    if rows_sum != total:
        problems.append(f"rows' revenue {rows_sum / 100:.2f} != totals.revenue {total / 100:.2f}")
    if conv != Decimal(t["conversions"]):
        problems.append(f"rows' conversions {conv} != totals.conversions {t['conversions']}")
    if problems:
        failures.append(f"{what}: " + "; ".join(problems))
    return "ok" if not problems else "FAIL"


# --------------------------------------------------------------------------- workloads
_SEQ = [0]


def variables(kind, group, source, vary):
    """With `vary`, every request's range ends one second later than the last one's (still every
    deal): a server that caches reports by their question then answers none from its cache."""
    rng = RANGE
    if vary:
        _SEQ[0] += 1
        end = datetime(2100, 1, 1) + timedelta(seconds=_SEQ[0])
        rng = {"from": RANGE["from"], "to": end.strftime("%Y-%m-%dT%H:%M:%SZ")}
    return {"model": {"kind": kind}, "range": rng, "groupBy": group, "source": source}


def run(c, kind, group, source, warmup, runs, expect_source, vary=False):
    for _ in range(warmup):
        c.post(QUERY, variables(kind, group, source, vary))
    times, rep, size = [], None, 0
    for _ in range(runs):
        dt, d, size = c.post(QUERY, variables(kind, group, source, vary))
        times.append(dt)
        rep = d["attribution"]
        if expect_source and rep["source"] != expect_source:
            raise SystemExit(f"{kind} {group} source {source}: expected {expect_source}, got {rep['source']}")
    return times, rep, size


def section(c, args, ref, results, failures, name, cases, source, warmup, runs, expect, tail):
    print(f"\n== {name}: source {source or 'default (AUTO)'}; {warmup} warm-up + {runs} timed ==")
    rows = []
    with Load(args.server_pid) as ld:
        for kind, group in cases:
            times, rep, size = run(c, kind, group, source, warmup, runs, expect, args.vary_range)
            ok = check_report(rep, ref, f"{kind} {group} {source}", failures)
            t = rep["totals"]
            tail_v = pct(times, 95) if tail == "p95" else max(times)
            results.append({"section": name, "model": kind, "groupBy": group, "source": rep["source"],
                            "modelVersion": rep["modelVersion"], "times_s": times,
                            "median_ms": statistics.median(times) * 1e3, tail + "_ms": tail_v * 1e3,
                            "rows": len(rep["rows"]), "bytes": size, "totals": t, "check": ok})
            rows.append([kind, group, rep["source"], rep["modelVersion"], f"{statistics.median(times) * 1e3:.1f}",
                         f"{tail_v * 1e3:.1f}", f"{min(times) * 1e3:.1f}", len(rep["rows"]), size,
                         t["deals"], t["revenue"]["amount"], t["unattributed"]["amount"], ok])
    table(["model", "groupBy", "source", "version", "median ms", tail + " ms", "min ms", "rows", "bytes",
           "deals", "revenue", "unattributed", "checks"], rows)
    print(ld.line())


def reference_checks(c, ref, results):
    print(f"\n== reference checks (exact, from the gen.py CSVs; read in {ref.seconds:.1f} s) ==")
    print(f"  won deals {ref.deals}, revenue {ref.revenue_cents / 100:.2f}, "
          f"deals with no touch in the window {sum(1 for p in ref.paths.values() if not p)}")
    out = {}
    for kind, exact in (("LINEAR", ref.linear()), ("FIRST_TOUCH", ref.first_last(False)),
                        ("LAST_TOUCH", ref.first_last(True))):
        for source in (None, "COMPUTE"):
            _, d, _ = c.post(QUERY_EXT, {"model": {"kind": kind}, "range": RANGE, "groupBy": "CAMPAIGN", "source": source})
            label = f"{kind} by CAMPAIGN, source {d['attribution']['source']}"
            out[label] = compare_campaigns(d["attribution"], exact, label)
    results.append({"section": "reference", "checks": out})


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[1])
    ap.add_argument("--url", default="http://127.0.0.1:8398/graphql")
    ap.add_argument("--key")
    ap.add_argument("--data-dir", default="/tmp/perf/data/M", help="gen.py's CSVs (for the checks)")
    ap.add_argument("--server-pid", type=int)
    ap.add_argument("--sections", default="ledger compute markov checks")
    ap.add_argument("--ledger-warmup", type=int, default=3)
    ap.add_argument("--ledger-runs", type=int, default=30)
    ap.add_argument("--compute-warmup", type=int, default=1)
    ap.add_argument("--compute-runs", type=int, default=5)
    ap.add_argument("--markov-warmup", type=int, default=1)
    ap.add_argument("--markov-runs", type=int, default=3)
    ap.add_argument("--vary-range", action="store_true",
                    help="end each request's range one second later than the last (defeats a report cache)")
    ap.add_argument("--json-out")
    ap.add_argument("--compare-markov", nargs=2, metavar=("OURS_TXT", "REFERENCE_CSV"),
                    help="compare `closedloop markov-paths` output with bench/markov_reference.py's CSV and exit")
    ap.add_argument("--exact-markov", nargs=2, metavar=("PATHS_CSV", "OURS_TXT"),
                    help="solve the removal effects of a path table independently (numpy, one linear solve per "
                         "key removed), compare with `closedloop markov-paths` output and exit")
    args = ap.parse_args()
    if args.compare_markov:
        return compare_markov(*args.compare_markov)
    if args.exact_markov:
        return exact_markov(*args.exact_markov)
    if not args.key:
        ap.error("--key is required")

    sections = args.sections.split()
    ref = Reference(args.data_dir)
    c = Client(args.url, args.key)
    results, failures = [], []
    print(f"range {RANGE['from']} .. {RANGE['to']}" + (" (+1 s per request: --vary-range)" if args.vary_range else "")
          + f"; expected: {ref.deals} won deals, revenue {ref.revenue_cents / 100:.2f}")
    if "ledger" in sections:
        section(c, args, ref, results, failures, "ledger", [(k, "CAMPAIGN") for k in RULES] + [("LINEAR", "CHANNEL")],
                None, args.ledger_warmup, args.ledger_runs, "LEDGER", "p95")
    if "compute" in sections:
        section(c, args, ref, results, failures, "compute", [(k, "CAMPAIGN") for k in RULES] + [("LINEAR", "CHANNEL")],
                "COMPUTE", args.compute_warmup, args.compute_runs, "COMPUTED", "max")
    if "markov" in sections:
        section(c, args, ref, results, failures, "markov", [("MARKOV", "CHANNEL"), ("MARKOV", "CAMPAIGN")],
                None, args.markov_warmup, args.markov_runs, "COMPUTED", "max")
    if "checks" in sections:
        reference_checks(c, ref, results)
    print("\ntotals checks: " + ("all passed" if not failures else "FAILURES:\n  " + "\n  ".join(failures)))
    if args.json_out:
        with open(args.json_out, "w") as f:
            json.dump({"results": results, "failures": failures}, f, indent=1, default=str)
    return 1 if failures else 0


# --------------------------------------------------------------------------- MARKOV comparison
def read_ours(ours_path):
    """key -> row of the CSV block `closedloop markov-paths` prints."""
    ours = {}
    with open(ours_path) as f:
        lines = f.read().splitlines()
    start = next(i for i, l in enumerate(lines) if l.startswith("key,total_conversions"))
    for r in csv.DictReader(lines[start:]):
        if not r.get("key") or r.get("total_conversions") is None:
            break
        ours[r["key"]] = r
    return ours


def compare_markov(ours_path, ref_path):
    """Max absolute differences per key between `closedloop markov-paths` (its CSV block) and
    bench/markov_reference.py (stdout CSV)."""
    ours = read_ours(ours_path)
    with open(ref_path) as f:
        ref = {r["channel_name"]: r for r in csv.DictReader(f)}
    cols = [("total_conversions", "credited conversions"), ("total_conversion_value", "credited value"),
            ("removal_effects_conversion", "removal effect (conversion)"),
            ("removal_effects_conversion_value", "removal effect (value)")]
    only_ours, only_ref = sorted(set(ours) - set(ref)), sorted(set(ref) - set(ours))
    print(f"keys: ours {len(ours)}, reference {len(ref)}, common {len(set(ours) & set(ref))}"
          + (f"; only ours: {only_ours[:10]}" if only_ours else "") + (f"; only reference: {only_ref[:10]}" if only_ref else ""))
    for col, label in cols:
        diffs = [(abs(float(ours[k][col]) - float(ref[k][col])), k) for k in set(ours) & set(ref)]
        rel = [abs(float(ours[k][col]) - float(ref[k][col])) / abs(float(ours[k][col]))
               for k in set(ours) & set(ref) if float(ours[k][col]) != 0]
        d, k = max(diffs)
        print(f"  {label}: max |ours - ref| = {d:.6g} (key {k}: ours {float(ours[k][col]):.6g}, ref {float(ref[k][col]):.6g}); "
              f"max relative {max(rel) if rel else 0:.3%}; sums: ours {sum(float(r[col]) for r in ours.values()):.6g}, "
              f"ref {sum(float(r[col]) for r in ref.values()):.6g}")
    return 0


def exact_markov(paths_csv, ours_path):
    """The first-order chain of a ChannelAttribution path table (consecutive repeats collapsed),
    its removal effects by brute force: for each key k, the conversion probability from (start)
    with k's row and column deleted (transitions into k go to (null)), one dense solve each.
    Value: the conversion probability of a state weighted by the mean value of the conversions
    ending there. Credited = removal effects normalised to the totals."""
    import numpy as np
    t0 = time.perf_counter()
    names, idx = [], {}
    trans = defaultdict(float)
    conv, val, out = defaultdict(float), defaultdict(float), defaultdict(float)
    total_conv, total_val = 0, Decimal(0)
    with open(paths_csv, newline="") as f:
        for r in csv.DictReader(f):
            c, nul, v = int(r["total_conversions"]), int(r["total_null"]), Decimal(r["total_conversion_value"])
            seq = []
            for k in r["path"].split(" > "):
                if k not in idx:
                    idx[k] = len(names) + 1
                    names.append(k)
                if not seq or seq[-1] != idx[k]:
                    seq.append(idx[k])
            prev = 0
            for s in seq:
                trans[(prev, s)] += c + nul
                out[prev] += c + nul
                prev = s
            out[prev] += c + nul
            conv[prev] += c
            val[prev] += float(v)
            total_conv += c
            total_val += v
    m = len(names) + 1
    Q = np.zeros((m, m))
    for (a, b), n in trans.items():
        Q[a, b] = n / out[a]
    r = np.array([conv[s] / out[s] if out[s] else 0.0 for s in range(m)])
    rv = np.array([val[s] / out[s] if out[s] else 0.0 for s in range(m)])  # = r(s) x mean value at s
    A = np.eye(m) - Q
    p, pv = np.linalg.solve(A, np.stack([r, rv], axis=1))[0]
    re, rev = np.zeros(m), np.zeros(m)
    for k in range(1, m):
        keep = [s for s in range(m) if s != k]
        x = np.linalg.solve(A[np.ix_(keep, keep)], np.stack([r[keep], rv[keep]], axis=1))[0]
        re[k], rev[k] = 1 - x[0] / p, 1 - x[1] / pv
    solve_s = time.perf_counter() - t0
    ours = read_ours(ours_path)
    print(f"independent exact solve (numpy, {m - 1} keys, {m - 1} removals): {solve_s:.2f} s incl. reading; "
          f"P(conversion) = {p:.10f}; conversions {total_conv}, value {total_val}")
    missing = [n for n in names if n not in ours]
    if missing:
        print(f"  keys missing from ours: {missing[:10]}")
    cols = [("removal_effects_conversion", re, None), ("removal_effects_conversion_value", rev, None),
            ("total_conversions", re, total_conv), ("total_conversion_value", rev, float(total_val))]
    for col, eff, total in cols:
        worst, wk = 0.0, None
        for i, n in enumerate(names, start=1):
            if n not in ours:
                continue
            exact = eff[i] if total is None else eff[i] / eff[1:].sum() * total
            d = abs(float(ours[n][col]) - exact)
            if d > worst or wk is None:
                worst, wk = d, n
        print(f"  {col}: max |ours - exact| = {worst:.3g} (key {wk})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
