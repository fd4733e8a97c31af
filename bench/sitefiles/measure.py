#!/usr/bin/env python3
"""bench/sitefiles: write→visible-elsewhere latency of replicated site files.

Writes through PHP on web server A (real php-fpm, the site's user) and polls web server B
until it serves the file with the written size; prints p50/p99/max per size class.
A benchmark, not a test: it asserts nothing."""
import http.client, json, random, sys, time

def main():
    host, a, b = sys.argv[1], sys.argv[2], sys.argv[3]
    small, big = int(sys.argv[4]), int(sys.argv[5])
    rng = random.Random(14)
    classes = {"1KiB-5MiB": [], "100MiB": []}
    plan = [("1KiB-5MiB", int(1024 * (5 * 1024) ** rng.random())) for _ in range(small)]
    plan += [("100MiB", 100 << 20) for _ in range(big)]
    ca, cb = http.client.HTTPConnection(a, 80, timeout=600), http.client.HTTPConnection(b, 80, timeout=30)
    mtime_diff = 0
    for i, (cls, size) in enumerate(plan):
        name = f"f{i % 50}.bin"
        rename = "&rename=1" if i % 2 else ""
        ca.request("GET", f"/writer.php?op=put&name={name}&size={size}{rename}", headers={"Host": host})
        r = ca.getresponse(); body = r.read()
        if r.status != 200:
            print(f"write {i} failed: {r.status} {body[:200]!r}"); sys.exit(1)
        t0 = time.monotonic()
        while True:
            cb.request("HEAD", f"/data/{name}", headers={"Host": host})
            rb = cb.getresponse(); rb.read()
            if rb.status == 200 and int(rb.getheader("content-length", "-1")) == size:
                break
            if time.monotonic() - t0 > 120:
                print(f"write {i} ({size} B) not visible on B after 120 s"); sys.exit(1)
            time.sleep(0.005)
        classes[cls].append(time.monotonic() - t0)
        ca.request("HEAD", f"/data/{name}", headers={"Host": host})
        ra = ca.getresponse(); ra.read()
        if ra.getheader("etag") != rb.getheader("etag") or ra.getheader("last-modified") != rb.getheader("last-modified"):
            mtime_diff += 1
        if big and cls == "100MiB":
            ca.request("GET", f"/writer.php?op=del&name={name}", headers={"Host": host}); ca.getresponse().read()
    for cls, xs in classes.items():
        if not xs: continue
        xs.sort()
        q = lambda p: xs[min(len(xs) - 1, int(p * len(xs)))] * 1000
        print(f"{cls}: n={len(xs)} p50={q(0.5):.0f} ms p99={q(0.99):.0f} ms max={xs[-1]*1000:.0f} ms")
    print(f"ETag/Last-Modified differing between A and B: {mtime_diff}")

main()
