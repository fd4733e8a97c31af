#!/usr/bin/env bash
# IMAP benchmark: hostplane's IMAP server (mail-mx, release build) against Dovecot on
# the same Maildir of 10,000 generated messages (2-50 KiB, a third multipart), each
# server on its own copy (so flags and UID lists do not interfere), on its own
# loopback address, no TLS on either (LOGIN in the clear on loopback).
# The same client (bench/imap/load.py) runs every step with 1 and 20 concurrent
# clients: login+SELECT, FETCH 1:* (FLAGS ENVELOPE), UID SEARCH SUBJECT/TEXT,
# 1,000 full-body fetches, 1,000 APPENDs. The servers take turns (ours, Dovecot,
# ours, ...) ROUNDS times on fresh copies; the median of each step is printed with
# the ratio ours/Dovecot (ops/s, > 1 is ours faster) and each server's peak RSS
# (all its processes).
#
#   bench/imap/run.sh                       # MSGS=10000 ROUNDS=3
#   ROUNDS=1 bench/imap/run.sh
#   SRC_MAILDIR=/tmp/md/Maildir bench/imap/run.sh  # made by gen_maildir.py DIR 10000
#
# Needs: apt package dovecot-imapd (not running as a service: the bench starts its
# own instance with `-c`), python3, openssl; root (Dovecot drops to its users).
# Leaves nothing behind: both servers are stopped on exit.
set -euo pipefail
cd "$(dirname "$0")/../.."

MSGS=${MSGS:-10000}
ROUNDS=${ROUNDS:-3}
CLIENTS=${CLIENTS:-"1 20"}
OURS_IP=${OURS_IP:-127.0.78.1}
DC_IP=${DC_IP:-127.0.78.2}
PORT=${PORT:-10143}
PW=bench-pw

missing=
command -v dovecot >/dev/null || missing="$missing dovecot-imapd"
command -v python3 >/dev/null || missing="$missing python3"
command -v openssl >/dev/null || missing="$missing openssl"
[ -z "$missing" ] || { echo "missing: apt-get install -y$missing" >&2; exit 1; }
[ "$(id -u)" = 0 ] || { echo "run as root (Dovecot drops to its own users)" >&2; exit 1; }

WORK=$(mktemp -d /tmp/hp-imap-bench.XXXXXX)
chmod 755 "$WORK"
OURS_PID=
DC_PID=
SAMPLER=
stop_servers() {
  [ -n "$SAMPLER" ] && kill "$SAMPLER" 2>/dev/null && wait "$SAMPLER" 2>/dev/null || true
  SAMPLER=
  if [ -n "$OURS_PID" ]; then kill -INT "$OURS_PID" 2>/dev/null || true; wait "$OURS_PID" 2>/dev/null || true; fi
  OURS_PID=
  if [ -n "$DC_PID" ]; then
    dovecot -c "$WORK/dc/dovecot.conf" stop >/dev/null 2>&1 || kill "$DC_PID" 2>/dev/null || true
    for _ in $(seq 50); do kill -0 "$DC_PID" 2>/dev/null || break; sleep 0.1; done
  fi
  DC_PID=
}
cleanup() {
  stop_servers
  [ -n "${KEEP:-}" ] || rm -rf "$WORK"
}
trap cleanup EXIT INT TERM

if [ -z "${MX:-}" ]; then
  cargo build --release -q -p role-mail --bin mail-mx
  MX=${CARGO_TARGET_DIR:-target}/release/mail-mx
fi

if [ -n "${SRC_MAILDIR:-}" ]; then  # one made earlier by gen_maildir.py
  cp -a "$SRC_MAILDIR" "$WORK/Maildir"
else
  echo "generating $MSGS messages" >&2
  python3 bench/imap/gen_maildir.py "$WORK/Maildir" "$MSGS"
fi
du -sh "$WORK/Maildir" >&2

HASH=$(openssl passwd -6 -salt imapbench "$PW")

# --- ours: argon2 is not required; a SHA-512-crypt hash (what Dovecot checks too)
python3 - "$HASH" >"$WORK/ours.json" <<'PY'
import json, sys
print(json.dumps({"domains": [{"domain": "bench.test", "primary": True, "mailboxes": ["bench"],
  "aliases": [], "accounts": [{"local_part": "bench", "password_hash": sys.argv[1],
  "quota_mb": 0, "enabled": True}]}], "flush": 0, "peers": []}))
PY

# --- Dovecot: a private instance, its own config, base_dir and port.
mkdir -p "$WORK/dc/run" "$WORK/dc/state"
NOBODY=$(id -u nobody); NOGROUP=$(getent group nogroup | cut -d: -f3)
echo "bench@bench.test:{SHA512-CRYPT}$HASH:$NOBODY:$NOGROUP::$WORK/dc/home::" >"$WORK/dc/passwd"
cat >"$WORK/dc/dovecot.conf" <<CF
base_dir = $WORK/dc/run
state_dir = $WORK/dc/state
instance_name = hp-imap-bench
protocols = imap
listen = $DC_IP
ssl = no
disable_plaintext_auth = no
auth_mechanisms = plain login
log_path = $WORK/dc/dovecot.log
mail_location = maildir:~/Maildir
first_valid_uid = 1
mail_max_userip_connections = 1000
passdb {
  driver = passwd-file
  args = scheme=SHA512-CRYPT $WORK/dc/passwd
}
userdb {
  driver = passwd-file
  args = $WORK/dc/passwd
}
# Like ours (one process, two worker threads on this 2-core machine): login
# processes in "high-performance" mode, one per core, each serving many clients.
# Dovecot's imap service is one process per session, as always.
service imap-login {
  inet_listener imap {
    address = $DC_IP
    port = $PORT
  }
  inet_listener imaps {
    port = 0
  }
  service_count = 0
  process_min_avail = 2
}
CF

# RSS of a process and all its descendants, in KiB
tree_rss() {
  local pids="$1" all="$1" next
  while [ -n "$pids" ]; do
    next=$(for p in $pids; do pgrep -P "$p" || true; done | tr '\n' ' ')
    all="$all $next"; pids=$(echo $next)
  done
  ps -o rss= -p "$(echo $all | tr ' ' ',')" 2>/dev/null | awk '{s+=$1} END {print s+0}'
}
sample_rss() { # PID OUT: keep the peak in OUT until killed
  local peak=0 r
  while kill -0 "$1" 2>/dev/null; do
    r=$(tree_rss "$1"); [ "$r" -gt "$peak" ] && { peak=$r; echo "$peak" >"$2"; }
    sleep 0.2
  done
}
wait_port() {
  for _ in $(seq 100); do
    (exec 3<>"/dev/tcp/$1/$PORT") 2>/dev/null && return 0
    sleep 0.1
  done
  echo "nothing listening on $1:$PORT" >&2; return 1
}

RES="$WORK/results.tsv"; : >"$RES"
for round in $(seq "$ROUNDS"); do
  for side in ours dovecot; do
    rm -rf "$WORK/run"; mkdir -p "$WORK/run"
    if [ $side = ours ]; then
      mkdir -p "$WORK/run/mail/bench.test/bench"
      cp -a "$WORK/Maildir" "$WORK/run/mail/bench.test/bench/Maildir"
      IMAP_PORT=$PORT "$MX" "$OURS_IP" 0 "$WORK/run" "$WORK/ours.json" >"$WORK/ours.log" 2>&1 &
      OURS_PID=$!; PID=$OURS_PID; IP=$OURS_IP
    else
      rm -rf "$WORK/dc/home"; mkdir -p "$WORK/dc/home"
      cp -a "$WORK/Maildir" "$WORK/dc/home/Maildir"
      chown -R "$NOBODY:$NOGROUP" "$WORK/dc/home"
      dovecot -c "$WORK/dc/dovecot.conf"
      sleep 0.3; DC_PID=$(cat "$WORK/dc/run/master.pid"); PID=$DC_PID; IP=$DC_IP
    fi
    wait_port "$IP"
    sync; echo 3 >/proc/sys/vm/drop_caches 2>/dev/null || true
    # first SELECT builds each server's index/UID list: timed apart, not in the steps
    python3 - "$IP" "$PORT" "$side" >>"$RES" <<'PY'
import socket, sys, time
t = time.monotonic()
s = socket.create_connection((sys.argv[1], int(sys.argv[2]))); f = s.makefile("rb")
f.readline(); s.sendall(b'a LOGIN bench@bench.test bench-pw\r\nb SELECT INBOX\r\nc LOGOUT\r\n')
for l in f:
    if l.startswith((b"a ", b"b ")) and not l[2:].startswith(b"OK"): raise SystemExit(l)
    if l.startswith(b"c "): break
print(f"{sys.argv[3]}\tfirst login+select (cold)\t1\t{time.monotonic() - t:.3f}\t0")
PY
    sample_rss "$PID" "$WORK/rss.$side.$round" & SAMPLER=$!
    for c in $CLIENTS; do
      python3 bench/imap/load.py "$IP" "$PORT" bench@bench.test "$PW" "$c" | sed "s/^/$side\t/" >>"$RES"
    done
    echo -e "$side\tpeak rss KiB\t-\t$(cat "$WORK/rss.$side.$round" 2>/dev/null || echo 0)\t0" >>"$RES"
    stop_servers
    echo "round $round $side done" >&2
  done
done

python3 - "$RES" <<'PY'
import sys, statistics as st
rows = [l.rstrip("\n").split("\t") for l in open(sys.argv[1]) if l.strip()]
data = {}
for side, step, c, secs, ops in rows:
    data.setdefault((step, c), {}).setdefault(side, []).append((float(secs), float(ops)))
print(f"{'step':30} {'clients':>7} {'ours s':>9} {'ours op/s':>10} {'dovecot s':>10} {'dc op/s':>9} {'ours/dc':>8}")
for (step, c), v in data.items():
    o, d = v.get("ours", [(0, 0)]), v.get("dovecot", [(0, 0)])
    os_, oo = st.median(x[0] for x in o), st.median(x[1] for x in o)
    ds, do = st.median(x[0] for x in d), st.median(x[1] for x in d)
    if step == "peak rss KiB":
        print(f"{'peak RSS (MiB, all processes)':30} {'':>7} {os_/1024:>9.1f} {'':>10} {ds/1024:>10.1f}")
    elif step.startswith("first"):
        print(f"{step:30} {c:>7} {os_:>9.2f} {'':>10} {ds:>10.2f} {'':>9} {ds/os_ if os_ else 0:>7.2f}x")
    else:
        print(f"{step:30} {c:>7} {os_:>9.3f} {oo:>10.1f} {ds:>10.3f} {do:>9.1f} {oo/do if do else 0:>7.2f}x")
print(f"(median of {len(o)} rounds; ours/dc = ops/s ratio, > 1 means ours is faster)")
PY
