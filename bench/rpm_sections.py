#!/usr/bin/env python3
"""Each rpm section, and campaign performance with and without the activity fields, timed cold
(one untimed write before each run empties the report cache), over all time and over 2025.

    python3 bench/rpm_sections.py --url http://127.0.0.1:8397/graphql --key clk_... [--runs 3]
"""
import argparse, json, time, http.client, statistics, urllib.parse
ap=argparse.ArgumentParser(); ap.add_argument("--url", default="http://127.0.0.1:8397/graphql"); ap.add_argument("--key", required=True); ap.add_argument("--runs", type=int, default=3)
a=ap.parse_args(); u=urllib.parse.urlparse(a.url); K=a.key
conn=http.client.HTTPConnection(u.hostname,u.port,timeout=600)
H={"content-type":"application/json","authorization":f"Bearer {K}"}
def post(q,v):
    t=time.perf_counter(); conn.request("POST",u.path,json.dumps({"query":q,"variables":v}),H); d=json.loads(conn.getresponse().read()); 
    if d.get("errors"): print(d["errors"]); 
    return time.perf_counter()-t
conn.request("POST",u.path,json.dumps({"query":"{ campaigns(first: 1) { nodes { id name } } }"}),H); first=json.loads(conn.getresponse().read())["data"]["campaigns"]["nodes"][0]
ren="mutation($input: UpdateCampaignInput!) { updateCampaign(input: $input) { userErrors { code } } }"
def inval():
    for n in (first["name"]+" x", first["name"]): post(ren,{"input":{"id":first["id"],"name":n}})
R={"from":"2000-01-01T00:00:00Z","to":"2100-01-01T00:00:00Z"}
Y={"from":"2025-01-01T00:00:00Z","to":"2026-01-01T00:00:00Z"}
secs={"conversion":"conversion { rate }","flow":"flow { inflow }","velocity":"velocity { stages { moves } }","sales":"velocity { salesCycle { won } }","value":"value { databaseValue { amount } }","reach":"reach { leads }","roi":"roi { total { roi } }"}
for rn,r in (("all",R),("2025",Y)):
  for k,s in secs.items():
    ts=[]
    for i in range(a.runs):
        inval(); ts.append(post("query($r: DateTimeRangeInput!) { rpm(range: $r) { %s } }"%s,{"r":r}))
    print(f"{rn:5} {k:11} {statistics.median(ts)*1000:9.1f} ms")
  for k,s in (("perf50x","leadsTouched opportunitiesInfluenced email { sent }"),("perf50","figures { roi }")):
    ts=[]
    for i in range(a.runs):
        inval(); ts.append(post("query($r: DateTimeRangeInput!) { campaigns(first: 50) { nodes { performance(range: $r) { %s } } } }"%s,{"r":r}))
    print(f"{rn:5} {k:11} {statistics.median(ts)*1000:9.1f} ms")
