#!/usr/bin/env bash
# bench/sitefiles peer: lsyncd 2.2 (inotify + rsync, the usual way to keep a second web
# server's files in step) replicating directory A to directory B on this machine, with the
# same write pattern as measure.py. Most favourable setup for the peer: local rsync (no ssh),
# no delay (`delay = 0`), one direction only, no fsync, no HTTP hop, no conflict handling.
#   bash bench/sitefiles/peer_lsyncd.sh        # SMALL=1000 BIG=100; needs lsyncd rsync
set -euo pipefail
cd "$(dirname "$0")"
SMALL=${SMALL:-1000}; BIG=${BIG:-100}
for t in lsyncd rsync; do command -v $t >/dev/null || { echo "missing $t: apt-get install -y $t" >&2; exit 1; }; done
W=$(mktemp -d /tmp/hp-lsyncd.XXXXXX); mkdir -p "$W/a" "$W/b"
cat > "$W/lsyncd.conf" <<CONF
settings { nodaemon = true, logfile = "$W/lsyncd.log", statusFile = "$W/status", insist = true }
sync { default.rsync, source = "$W/a", target = "$W/b", delay = 0, rsync = { archive = true, whole_file = true } }
CONF
lsyncd "$W/lsyncd.conf" > "$W/out.log" 2>&1 & PID=$!
trap 'kill $PID 2>/dev/null; wait $PID 2>/dev/null; rm -rf "$W"' EXIT
sleep 2
python3 peer.py "$W/a" "$W/b" "$SMALL" "$BIG"
