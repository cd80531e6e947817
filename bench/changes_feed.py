#!/usr/bin/env python3
"""One `changes` subscriber over graphql-transport-ws: counts the changes it is delivered and
times them (first to last), until `--expect` arrived or nothing came for `--idle` seconds.

    python3 bench/changes_feed.py --url ws://127.0.0.1:8399/graphql/ws --key KEY --expect 1500000
"""
import argparse
import asyncio
import base64
import json
import sys
import time

import websockets


async def run(a):
    after = base64.urlsafe_b64encode(f"chg:{a.after}".encode()).decode().rstrip("=")
    query = "subscription($a: String) { changes(after: $a) { seq entity } }"
    async with websockets.connect(a.url, subprotocols=["graphql-transport-ws"], max_size=None) as ws:
        await ws.send(json.dumps({"type": "connection_init", "payload": {"Authorization": f"Bearer {a.key}"}}))
        ack = json.loads(await ws.recv())
        assert ack["type"] == "connection_ack", ack
        await ws.send(json.dumps({"id": "c", "type": "subscribe", "payload": {"query": query, "variables": {"a": after}}}))
        print("subscribed", flush=True)
        n, first, last, last_seq = 0, None, None, a.after
        by_entity = {}
        while n < a.expect:
            try:
                raw = await asyncio.wait_for(ws.recv(), timeout=a.idle)
            except asyncio.TimeoutError:
                break
            msg = json.loads(raw)
            if msg.get("type") == "ping":
                await ws.send(json.dumps({"type": "pong"}))
                continue
            if msg.get("type") != "next":
                print("unexpected", msg, file=sys.stderr)
                break
            c = msg["payload"]["data"]["changes"]
            if c["seq"] != last_seq + 1:
                print(f"gap or repeat: {last_seq} then {c['seq']}", file=sys.stderr)
                sys.exit(1)
            last_seq = c["seq"]
            now = time.perf_counter()
            first = first or now
            last = now
            n += 1
            by_entity[c["entity"]] = by_entity.get(c["entity"], 0) + 1
        secs = (last - first) if first else 0.0
        rate = n / secs if secs > 0 else 0.0
        print(json.dumps({"changes": n, "last_seq": last_seq, "seconds_first_to_last": round(secs, 3),
                          "per_second": round(rate), "by_entity": by_entity}), flush=True)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--url", required=True)
    p.add_argument("--key", required=True)
    p.add_argument("--after", type=int, default=0)
    p.add_argument("--expect", type=int, default=10**9)
    p.add_argument("--idle", type=float, default=15.0)
    asyncio.run(run(p.parse_args()))


if __name__ == "__main__":
    main()
