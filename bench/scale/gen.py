#!/usr/bin/env python3
"""NDJSON for `hostplane import`: the fill of bench/scale/run.sh (not a test).

    python3 bench/scale/gen.py FROM TO [PHP_EVERY] [MAILBOXES] > file.ndjson

writes domains FROM..TO-1 (`scale-dNNNNNNN.example`), each with a site (PHP on every
PHP_EVERY-th, default 100; 0: none) and, when MAILBOXES is 1 (default), one mailbox
with a pre-hashed SHA512-crypt password (hashing plaintext costs ~0.5 s of a core per
mailbox; a bulk import keeps the old system's hash). Customers own 50 domains each
(the default plan allows 100); a customer line comes before its first domain, so
FROM and TO should be multiples of 50.
"""
import json
import sys

HASH = "$6$importsalt$AXBNZ21WZ1ioXznwBfzTGB6bKPszakwuIE8srn9m2k1Ea6URlNWWAWd1niZ/4eidZlWfwQB3gAdMLtn/zgdYx/"
PER = 50


def main():
    lo, hi = int(sys.argv[1]), int(sys.argv[2])
    php_every = int(sys.argv[3]) if len(sys.argv) > 3 else 100
    mailboxes = (sys.argv[4] if len(sys.argv) > 4 else "1") == "1"
    w = sys.stdout.write
    for i in range(lo, hi):
        c = f"scale-c{i // PER:06d}"
        if i % PER == 0:
            w(json.dumps({"kind": "customer", "name": c}) + "\n")
        d = f"scale-d{i:07d}.example"
        w(json.dumps({"kind": "domain", "name": d, "customer": c}) + "\n")
        php = php_every > 0 and i % php_every == 0
        w(json.dumps({"kind": "site", "domain": d, "php": php}) + "\n")
        if mailboxes:
            w(json.dumps({"kind": "mailbox", "address": f"user@{d}", "password_hash": HASH}) + "\n")


if __name__ == "__main__":
    main()
