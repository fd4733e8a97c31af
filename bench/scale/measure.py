#!/usr/bin/env python3
"""Memory and desired-config sizes of a running `hostplane up` (bench/scale/run.sh).

    python3 bench/scale/measure.py BIN DATA_DIR LABEL [--wait SECONDS]

With --wait, first polls `hostplane server list --json` until every server has
applied the config revision the controller holds for it (twice in a row, 2 s apart)
and prints how long that took. Then prints one markdown row per server and one for
the controller: RSS now and peak (VmRSS / VmHWM of the agent process), the RSS of what
its engines started (php-fpm, mariadbd, postgres: processes in its process group or
sessions naming its state dir), the size of its cached desired config
(`state/desired.json`), and the engine's health detail.
"""
import json
import os
import subprocess
import sys
import time


def servers(bin_):
    out = subprocess.run([bin_, "server", "list", "--json"], capture_output=True, text=True, check=True).stdout
    data = json.loads(out)
    return data if isinstance(data, list) else data.get("servers", data.get("items", []))


def procs():
    out = {}
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            cmd = open(f"/proc/{pid}/cmdline", "rb").read().replace(b"\0", b" ").decode(errors="replace")
            stat = open(f"/proc/{pid}/stat").read()
            status = open(f"/proc/{pid}/status").read()
        except OSError:
            continue
        f = stat.rsplit(") ", 1)[1].split()
        kv = {l.split(":")[0]: l.split(":")[1].strip() for l in status.splitlines() if ":" in l}
        kib = lambda k: int(kv.get(k, "0 kB").split()[0])
        out[int(pid)] = {"cmd": cmd, "ppid": int(f[1]), "pgrp": int(f[2]), "rss": kib("VmRSS"), "hwm": kib("VmHWM")}
    return out


def mib(kib):
    return f"{kib / 1024:.0f}"


def wait_converged(bin_, limit):
    start = time.time()
    ok = 0
    while time.time() - start < limit:
        try:
            s = servers(bin_)
            done = all(x.get("applied_revision") is not None and x.get("applied_revision") == x.get("config_revision") for x in s)
        except Exception:
            done = False
        ok = ok + 1 if done else 0
        if ok >= 2:
            return time.time() - start - 2
        time.sleep(2)
    return None


def main():
    bin_, data, label = sys.argv[1], os.path.abspath(sys.argv[2]), sys.argv[3]
    if "--wait" in sys.argv:
        limit = float(sys.argv[sys.argv.index("--wait") + 1])
        t = wait_converged(bin_, limit)
        print(f"{label}: every server applied its latest config {'after %.0f s' % t if t is not None else 'NOT within %.0f s' % limit}")
    ps = procs()
    rows = []
    for s in servers(bin_):
        name = s["name"]
        mark = f"{data}/agents/{name}/"
        agent = [p for p, v in ps.items() if " agent " in v["cmd"] and mark in v["cmd"]]
        a = ps[agent[0]] if agent else {"rss": 0, "hwm": 0, "pgrp": -1}
        apid = agent[0] if agent else -1
        # What its engines started: its process group (minus itself), and sessions
        # naming its state dir (the php-fpm masters) with their workers.
        kids = {p for p, v in ps.items() if p != apid and (v["pgrp"] == a["pgrp"] or mark in v["cmd"])}
        kids |= {p for p, v in ps.items() if v["ppid"] in kids}
        kids_rss = sum(ps[p]["rss"] for p in kids)
        names = sorted({ps[p]["cmd"].split()[0].split("/")[-1].rstrip(":") for p in kids})
        try:
            size = os.path.getsize(f"{data}/agents/{name}/state/desired.json")
        except OSError:
            size = 0
        detail = "; ".join(f"{e.get('name')}: {e.get('detail', '')}" for e in s.get("engines", []))
        rows.append((name, s.get("role", ""), mib(a["rss"]), mib(a["hwm"]), f"{mib(kids_rss)} ({len(kids)}: {', '.join(names)})" if kids else "0", f"{size / 1e6:.2f}", detail[:140]))
    ctl = [v for v in ps.values() if " controller run " in v["cmd"] and data in v["cmd"]]
    c = ctl[0] if ctl else {"rss": 0, "hwm": 0}
    print(f"\n### {label}\n")
    print("| server | role | agent RSS MiB | peak MiB | engines' processes RSS MiB | desired.json MB | engine health |")
    print("|---|---|---:|---:|---|---:|---|")
    for r in rows:
        print("| " + " | ".join(r) + " |")
    print(f"| controller | | {mib(c['rss'])} | {mib(c['hwm'])} | | | |")
    sys.stdout.flush()


if __name__ == "__main__":
    main()
