#!/usr/bin/env python3
"""(closedloop's copy of ../shared/bench/loadtest/loadtest.py: targets may carry an "auth_env" naming
an environment variable that holds an API key, sent as `Authorization: Bearer <key>`; and the
"closedloop" cursor scheme.)

HTTP load test of the GraphQL workloads Q1..Q3 against one or more targets, side by side.

  python3 loadtest/loadtest.py --targets postgraphile-v5[,new-backend] --leads 100000 \
      --conns 4,16 --duration 20 --out /tmp/perf/results/load_M.json

Targets are defined in targets.json (url, directory with q1/q2/q3.graphql, cursor scheme, how ids
are sent). For every target and query it
  1. builds 2000 request bodies with seeded random variables (Q1: $id uniform in 1..leads;
     Q2: $after = cursor of a uniform random lead id in 0..leads-50, 0 = first page; Q3: none),
  2. validates a sample of them (HTTP 200, no "errors", non-null data; for Q2 the cursor scheme is
     checked against the server's own endCursor),
  3. runs a short warm-up, then `wrk -t1 -c<conns> -d<duration>s` per connection setting.
Records requests/s, p50/p90/p99 latency, errors, wrk's own CPU time and whole-machine CPU use
(the load generator shares the cores with the server and the database).
"""
import argparse
import base64
import json
import os
import random
import re
import subprocess
import sys
import time
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = HERE  # queries and targets.json live beside this file
LUA = os.path.join(HERE, "graphql.lua")


def b64(s):
    return base64.b64encode(s.encode()).decode()


# cursor scheme name -> function(start_id, probe) returning the $after value for "rows after id start_id".
# probe: the server's Q2 first page response (used to learn opaque prefixes).
def _pg5(i, probe):
    end = probe["data"]["allLeads"]["pageInfo"]["endCursor"]
    digest = json.loads(base64.b64decode(end))[0]
    return b64(json.dumps([digest, str(i)], separators=(",", ":")))


def _closedloop(i, probe):
    raw = json.dumps({"id": i}, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


CURSORS = {
    "closedloop": _closedloop,                                           # base64url('{"id":N}'), no padding
    "postgraphile-v5": _pg5,                                            # base64(["<digest>","<id>"])
    "postgraphile-v4": lambda i, p: b64(json.dumps(["primary_key_asc", [i]], separators=(",", ":"))),
    "async-graphql-usize": lambda i, p: str(i),                          # impl CursorType for usize
    "base64-id": lambda i, p: b64(str(i)),
}


AUTH = {}  # url -> "Bearer <key>"


def post(url, body, timeout=30):
    headers = {"content-type": "application/json", "accept": "application/json"}
    if url in AUTH:
        headers["authorization"] = AUTH[url]
    req = urllib.request.Request(url, data=body.encode(), headers=headers)
    with urllib.request.urlopen(req, timeout=timeout) as r:
        return r.status, json.loads(r.read())


def find_end_cursor(obj):
    """First pageInfo.endCursor anywhere in a response (schema-agnostic)."""
    if isinstance(obj, dict):
        if "endCursor" in obj:
            return obj["endCursor"]
        for v in obj.values():
            c = find_end_cursor(v)
            if c is not None:
                return c
    elif isinstance(obj, list):
        for v in obj:
            c = find_end_cursor(v)
            if c is not None:
                return c
    return None


def build_bodies(name, t, leads, n=2000, seed=7):
    rng = random.Random(seed)
    qdir = os.path.join(ROOT, t["queries"])  # absolute paths are kept as they are by os.path.join
    idv = (lambda i: str(i)) if t.get("id_as", "int") == "string" else (lambda i: i)
    out = {}
    q1 = open(os.path.join(qdir, "q1.graphql")).read()
    out["Q1"] = [json.dumps({"query": q1, "variables": {"id": idv(rng.randint(1, leads))}}) for _ in range(n)]
    q2 = open(os.path.join(qdir, "q2.graphql")).read()
    st, probe = post(t["url"], json.dumps({"query": q2, "variables": {"after": None}}))
    if probe.get("errors") or st != 200:
        raise SystemExit(f"{name} Q2 probe failed: {st} {probe.get('errors')}")
    enc = CURSORS[t["cursor"]]
    # self-check of the cursor scheme: our cursor for id 50 must equal the server's endCursor of page 1
    mine, theirs = enc(50, probe), find_end_cursor(probe)
    if theirs is not None and mine != theirs:
        raise SystemExit(f"{name}: cursor scheme {t['cursor']} gives {mine!r}, server's endCursor is {theirs!r}")
    starts = [rng.choice([0] + [rng.randint(1, leads - 50)] * 9) for _ in range(n)]  # ~10% first page
    out["Q2"] = [json.dumps({"query": q2, "variables": {"after": enc(s, probe) if s else None}}) for s in starts]
    q3 = open(os.path.join(qdir, "q3.graphql")).read()
    out["Q3"] = [json.dumps({"query": q3})] * n
    return out


def validate(name, url, bodies, k=20):
    for b in bodies[:k]:
        st, r = post(url, b)
        if st != 200 or r.get("errors") or not r.get("data") or any(v is None for v in r["data"].values()):
            raise SystemExit(f"{name}: invalid response for {b[:200]}: {st} {json.dumps(r)[:500]}")
    return len(json.dumps(r))


def cpu_jiffies():
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:]]
    idle = v[3] + v[4]
    return sum(v) - idle, sum(v)


def wait_quiet(max_wait=90, threshold=0.25, window=2.0):
    """Wait (up to max_wait s) until the whole machine is nearly idle for `window` s, so a run does not
    start while another tenant's job is using the shared cores. Returns seconds waited (-1 = gave up)."""
    t_start = time.time()
    while True:
        b0, t0 = cpu_jiffies()
        time.sleep(window)
        b1, t1 = cpu_jiffies()
        if (b1 - b0) / max(1, t1 - t0) * os.cpu_count() < threshold:
            return round(time.time() - t_start, 1)
        if time.time() - t_start > max_wait:
            return -1


def group_jiffies(groups):
    """utime+stime (jiffies) summed per group of processes whose cmdline matches the group's regex."""
    tot = {g: 0 for g in groups}
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            cmd = open(f"/proc/{pid}/cmdline", "rb").read().replace(b"\0", b" ").decode(errors="replace")
            st = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        for g, rx in groups.items():
            if rx.search(cmd):
                tot[g] += sum(int(x) for x in st[11:15])  # utime stime cutime cstime
    return tot


def run_wrk(url, body_file, conns, duration, wrk="wrk", groups=None):
    env = dict(os.environ, BODIES=body_file, AUTH_HEADER=AUTH.get(url, ""))
    groups = groups or {}
    g0 = group_jiffies(groups)
    b0, t0 = cpu_jiffies()
    cmd = ["/usr/bin/time", "-f", "TIMECPU %U %S", wrk, "-t1", f"-c{conns}", f"-d{duration}s", "--timeout", "10s",
           "-s", LUA, url]
    p = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=duration + 60)
    b1, t1 = cpu_jiffies()
    g1 = group_jiffies(groups)
    out = p.stdout + p.stderr
    m = re.search(r"WRKJSON (\{.*\})", out)
    if not m:
        raise SystemExit(f"wrk failed: {out}")
    r = json.loads(m.group(1))
    u, s = map(float, re.search(r"TIMECPU ([\d.]+) ([\d.]+)", out).groups())
    secs = r["duration_us"] / 1e6
    ncpu = os.cpu_count()
    res = {
        "conns": conns, "duration_s": round(secs, 2), "requests": r["requests"],
        "rps": round(r["requests"] / secs, 1),
        "p50_ms": r["p50_us"] / 1000, "p90_ms": r["p90_us"] / 1000, "p99_ms": r["p99_us"] / 1000,
        "mean_ms": round(r["lat_mean_us"] / 1000, 3), "max_ms": r["lat_max_us"] / 1000,
        "errors": {k[4:]: v for k, v in r.items() if k.startswith("err_") and v},
        "avg_resp_bytes": round(r["bytes"] / max(1, r["requests"])),
        "wrk_cpu_cores": round((u + s) / secs, 2),
        "machine_busy_cores": round((b1 - b0) / max(1, t1 - t0) * ncpu, 2),
        "proc_cpu_cores": {g: round((g1[g] - g0[g]) / os.sysconf("SC_CLK_TCK") / secs, 2) for g in groups},
    }
    # CPU used by anything else on the machine during the run (other tenants, background jobs):
    # a contamination flag; near 0 means the run had the machine to itself.
    res["other_cores"] = round(max(0.0, res["machine_busy_cores"] - res["wrk_cpu_cores"]
                                   - sum(res["proc_cpu_cores"].values())), 2) if groups else None
    return res


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--targets", required=True, help="comma list of names from targets.json")
    ap.add_argument("--targets-file", default=os.path.join(ROOT, "targets.json"))
    ap.add_argument("--leads", type=int, required=True, help="number of leads in the loaded dataset")
    ap.add_argument("--conns", default="4,16")
    ap.add_argument("--duration", type=int, default=20)
    ap.add_argument("--warmup", type=int, default=5)
    ap.add_argument("--queries", default="Q1,Q2,Q3")
    ap.add_argument("--cpu-groups", default="postgraphile=postgraphile/dist/cli-run,postgres=(^|/)postgres[ :]",
                    help="NAME=REGEX,... processes (by cmdline) whose CPU use is recorded during each run")
    ap.add_argument("--quiet-wait", type=int, default=90,
                    help="before each run wait up to N s for the machine to be idle (0 = don't)")
    ap.add_argument("--out", required=True)
    a = ap.parse_args()
    cfg = json.load(open(a.targets_file))
    groups = {k: re.compile(v) for k, v in (x.split("=", 1) for x in a.cpu_groups.split(",") if x)}
    os.makedirs(os.path.dirname(os.path.abspath(a.out)), exist_ok=True)
    rows = []
    for name in a.targets.split(","):
        t = cfg[name]
        if t.get("auth_env"):
            AUTH[t["url"]] = "Bearer " + os.environ[t["auth_env"]]
        bodies = build_bodies(name, t, a.leads)
        for q in a.queries.split(","):
            bf = f"{os.path.splitext(a.out)[0]}.{name}.{q}.bodies"
            with open(bf, "w") as f:
                f.write("\n".join(bodies[q]) + "\n")
            size = validate(name, t["url"], bodies[q])
            print(f"[{name} {q}] validated; sample response {size} bytes; warm-up {a.warmup}s", file=sys.stderr)
            if a.warmup:
                run_wrk(t["url"], bf, int(a.conns.split(",")[0]), a.warmup)
            for c in [int(x) for x in a.conns.split(",")]:
                waited = wait_quiet(a.quiet_wait) if a.quiet_wait else None
                r = run_wrk(t["url"], bf, c, a.duration, groups=groups)
                r.update(target=name, query=q, waited_for_quiet_s=waited)
                rows.append(r)
                print(f"[{name} {q} c={c}] {r['rps']} req/s p50 {r['p50_ms']} ms p99 {r['p99_ms']} ms "
                      f"errors {r['errors'] or 0} wrk {r['wrk_cpu_cores']} cores, machine {r['machine_busy_cores']} cores, "
                      f"per process group {r['proc_cpu_cores']}, other {r['other_cores']}",
                      file=sys.stderr)
                time.sleep(1)
    with open(a.out, "w") as f:
        json.dump(rows, f, indent=1)
    print("| target | query | conns | req/s | p50 ms | p90 ms | p99 ms | errors | wrk cores | busy cores | per process cores | other cores |")
    print("|---|---|---:|---:|---:|---:|---:|---|---:|---:|---|---:|")
    for r in rows:
        print(f"| {r['target']} | {r['query']} | {r['conns']} | {r['rps']:.0f} | {r['p50_ms']:.2f} | {r['p90_ms']:.2f} | "
              f"{r['p99_ms']:.2f} | {r['errors'] or 0} | {r['wrk_cpu_cores']} | {r['machine_busy_cores']} | "
              f"{' '.join(f'{k}={v}' for k, v in r['proc_cpu_cores'].items())} | {r['other_cores']} |")


if __name__ == "__main__":
    main()
