#!/usr/bin/env bash
# bench/imap/per_command.sh MAIL_MX MAILDIR — what one command costs with a large mailbox
# selected: starts MAIL_MX (a release build of role-mail's `mail-mx`) on 127.0.78.9:10143
# with a copy of MAILDIR (made by gen_maildir.py) as bench@bench.test's INBOX, and prints
# the SELECT time, the mean round trip of 200 NOOPs and of 100 `FETCH n BODY.PEEK[]`
# (one client, Python, plain IMAP). Light enough to run beside other work; compares two
# builds of the same server, not servers with each other (that is run.sh).
#   cargo build --release -p role-mail --bin mail-mx
#   bash bench/imap/per_command.sh target/release/mail-mx /tmp/imapbench-gen/Maildir
set -euo pipefail
MX=$1; SRC=$2; IP=127.0.78.9; PORT=10143; W=$(mktemp -d /tmp/imap-per-command.XXXX); P=""
trap '[ -n "$P" ] && kill "$P" 2>/dev/null; wait 2>/dev/null; rm -rf "$W"' EXIT
HASH=$(openssl passwd -6 -salt imapbench bench-pw)
python3 - "$HASH" > "$W/cfg.json" <<'PY'
import json, sys
print(json.dumps({"domains": [{"domain": "bench.test", "primary": True, "mailboxes": ["bench"],
  "aliases": [], "accounts": [{"local_part": "bench", "password_hash": sys.argv[1],
  "quota_mb": 0, "enabled": True}]}], "flush": 0, "peers": []}))
PY
mkdir -p "$W/run/mail/bench.test/bench" && cp -a "$SRC" "$W/run/mail/bench.test/bench/Maildir"
IMAP_PORT=$PORT "$MX" $IP 0 "$W/run" "$W/cfg.json" > "$W/log" 2>&1 & P=$!
for _ in $(seq 100); do (exec 3<>/dev/tcp/$IP/$PORT) 2>/dev/null && break; sleep 0.1; done
python3 - $IP $PORT <<'PY'
import socket, sys, time
s = socket.create_connection((sys.argv[1], int(sys.argv[2]))); f = s.makefile("rb"); f.readline()
def cmd(tag, c):
    s.sendall(tag + b" " + c + b"\r\n")
    for l in f:
        if l.startswith(tag + b" "): return l
t=time.monotonic(); cmd(b"a", b"LOGIN bench@bench.test bench-pw"); print(cmd(b"b", b"SELECT INBOX").strip(), f"select {time.monotonic()-t:.2f}s")
t=time.monotonic()
for i in range(200): cmd(b"n%d" % i, b"NOOP")
print(f"200 NOOP: {(time.monotonic()-t)/200*1000:.2f} ms each")
t=time.monotonic()
for i in range(100): cmd(b"f%d" % i, b"FETCH %d BODY.PEEK[]" % (i*97+1))
print(f"100 body fetches: {(time.monotonic()-t)/100*1000:.2f} ms each")
PY
