#!/usr/bin/env python3
"""Generate an NDJSON file for `hostplane import` benchmarks (not a test).

    python3 bench/import/gen.py DOMAINS [DOMAINS_PER_CUSTOMER] > file.ndjson

writes DOMAINS domains, each with one mailbox (a SHA512-crypt hash, the same for all:
verification is paid at login, not at import), owned by DOMAINS/DOMAINS_PER_CUSTOMER
customers (default 50 domains each, under the default plan's 100; few customers also
keep the background RSA DKIM key generation, one key per customer, out of the way).
See bench/import/README.md for the measurement.
"""
import json
import sys

HASH = "$6$importsalt$AXBNZ21WZ1ioXznwBfzTGB6bKPszakwuIE8srn9m2k1Ea6URlNWWAWd1niZ/4eidZlWfwQB3gAdMLtn/zgdYx/"


def main():
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 10000
    per = int(sys.argv[2]) if len(sys.argv) > 2 else 50
    out = sys.stdout
    for i in range(n):
        c = f"bench-c{i // per:06d}"
        if i % per == 0:
            out.write(json.dumps({"kind": "customer", "name": c}) + "\n")
        d = f"bench-d{i:07d}.example"
        out.write(json.dumps({"kind": "domain", "name": d, "customer": c}) + "\n")
        out.write(json.dumps({"kind": "mailbox", "address": f"user@{d}", "password_hash": HASH}) + "\n")


if __name__ == "__main__":
    main()
