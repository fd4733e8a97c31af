#!/usr/bin/env python3
"""bench/sitefiles peer: the same write pattern as measure.py, written straight into
directory A (no PHP, no HTTP) and timed until directory B holds the file with the written
size: what lsyncd (inotify + rsync) gives a two-server host. A benchmark: asserts nothing."""
import os, random, sys, time

def main():
    a, b = sys.argv[1], sys.argv[2]
    small, big = int(sys.argv[3]), int(sys.argv[4])
    rng = random.Random(14)
    plan = [("1KiB-5MiB", int(1024 * (5 * 1024) ** rng.random())) for _ in range(small)]
    plan += [("100MiB", 100 << 20) for _ in range(big)]
    block = os.urandom(1 << 20)
    res = {"1KiB-5MiB": [], "100MiB": []}
    for i, (cls, size) in enumerate(plan):
        name = f"f{i % 50}.bin"
        tmp = os.path.join(a, f".tmp-{i}") if i % 2 else os.path.join(a, name)
        with open(tmp, "wb") as f:
            left = size
            while left > 0:
                n = min(left, len(block)); f.write(block[:n]); left -= n
        if tmp != os.path.join(a, name):
            os.rename(tmp, os.path.join(a, name))
        t0 = time.monotonic()
        while True:
            try:
                if os.stat(os.path.join(b, name)).st_size == size:
                    break
            except FileNotFoundError:
                pass
            if time.monotonic() - t0 > 120:
                print(f"write {i} not in B after 120 s"); sys.exit(1)
            time.sleep(0.005)
        res[cls].append(time.monotonic() - t0)
        if cls == "100MiB":
            os.remove(os.path.join(a, name))
    for cls, xs in res.items():
        if not xs: continue
        xs.sort(); q = lambda p: xs[min(len(xs) - 1, int(p * len(xs)))] * 1000
        print(f"{cls}: n={len(xs)} p50={q(0.5):.0f} ms p99={q(0.99):.0f} ms max={xs[-1]*1000:.0f} ms")

main()
