#!/usr/bin/env bash
# bench/sitefiles: a file written by PHP on web-1 is served by web-2 — how long it takes,
# measured as deployed (issue 14): against a running `hostplane up` (web-eu: web-1
# 127.0.0.11, web-2 127.0.0.12; files-1 holds the hub). Creates the site
# `bench-sf.example` (mode all, PHP), deploys writer.php, runs measure.py, deletes the site.
#
#   hostplane up &                       # in another terminal, then:
#   HP=target/release/hostplane bash bench/sitefiles/run.sh     # SMALL=1000 BIG=100
#
# BIG writes of 100 MiB need ~BIG × 100 MiB free on the files server (kept versions).
set -euo pipefail
cd "$(dirname "$0")"
HP=${HP:-hostplane}; SMALL=${SMALL:-1000}; BIG=${BIG:-100}; D=${DOMAIN:-bench-sf.example}
W=$(mktemp -d /tmp/hp-sitefiles.XXXXXX); trap 'rm -rf "$W"' EXIT
$HP customer add bench-sf >/dev/null 2>&1 || true
$HP domain add "$D" --customer bench-sf >/dev/null
$HP site add "$D" --mode all --php >/dev/null
mkdir -p "$W/site" && cp writer.php "$W/site/"
$HP site upload "$D" "$W/site" >/dev/null
for i in $(seq 1 100); do
  a=$(curl -s -o /dev/null -w '%{http_code}' -H "Host: $D" "http://127.0.0.11/writer.php?op=put&name=warm&size=1" || true)
  [ "$a" = 200 ] && break; sleep 0.2; done
python3 measure.py "$D" 127.0.0.11 127.0.0.12 "$SMALL" "$BIG"
$HP domain delete "$D" >/dev/null 2>&1 || $HP domain delete "$D" --force >/dev/null 2>&1 || true
