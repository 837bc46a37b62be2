"""Checks the JSON summary line of `fanout` or `gateway-latency` (stdin): every client
connected, every delivery received once. Usage: load-smoke-check.py NAME < summary.json"""
import json
import sys

name, v = sys.argv[1], json.load(sys.stdin)
bad = []
for run in v.get("runs", []):
    target = run["target"]
    if run["connected"] != run["clients"] or run["lost"] or run["duplicates"]:
        bad.append("%s: connected %d of %d, lost %d, duplicates %d" % (
            target, run["connected"], run["clients"], run["lost"], run["duplicates"]))
    for p in run["phases"]:
        if p["received"] != p["expected"] or p["expected"] == 0:
            bad.append("%s %s: received %d of %d" % (target, p["name"], p["received"], p["expected"]))
if v.get("tool") == "gateway-latency":
    for p in v["phases"]:
        if p["lost"] or p["duplicates"] or p["received"] != p["expected"] or p["expected"] == 0:
            bad.append("%s: received %d of %d, lost %d, duplicates %d" % (
                p["phase"], p["received"], p["expected"], p["lost"], p["duplicates"]))
if not v.get("runs") and v.get("tool") != "gateway-latency":
    bad.append("no runs in the summary")
if bad:
    sys.exit(name + ": " + "; ".join(bad))
print(name + ": ok")
