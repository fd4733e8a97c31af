#!/usr/bin/env bash
# Import benchmark (not a test): a release controller on its own address with SQLite,
# the four domain clusters (no servers: placement needs clusters only), then
# `hostplane import` of bench/import/gen.py's file, timed, with the controller's CPU
# seconds (from /proc) per 1,000 lines.
#
#   cargo build --release -p hostplane
#   bench/import/run.sh [DOMAINS] [ADDR]      # default 10000 domains, 127.0.9.1:19443
set -euo pipefail
N=${1:-10000}
ADDR=${2:-127.0.9.1:19443}
BIN=${BIN:-${CARGO_TARGET_DIR:-target}/release/hostplane}
DIR=$(mktemp -d /tmp/hp-import-bench.XXXXXX)
trap 'kill $PID 2>/dev/null || true; wait $PID 2>/dev/null || true; rm -rf "$DIR"' EXIT
python3 "$(dirname "$0")/gen.py" "$N" > "$DIR/file.ndjson"
LINES=$(wc -l < "$DIR/file.ndjson")
"$BIN" controller init --data-dir "$DIR/cp" --listen "$ADDR" --json > "$DIR/init.json"
field() { python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))[sys.argv[2]])' "$DIR/init.json" "$1"; }
"$BIN" controller run --config "$(field config)" > "$DIR/controller.log" 2>&1 &
PID=$!
export HOSTPLANE_CONFIG="$DIR/cli.toml" HOSTPLANE_URL="$(field url)" HOSTPLANE_TOKEN="$(field admin_token)" HOSTPLANE_CA="$(field ca)"
for i in $(seq 50); do "$BIN" status > /dev/null 2>&1 && break; sleep 0.2; done
for r in web files dns mail; do "$BIN" cluster add "$r-1" --role "$r" --default > /dev/null; done
# CPU seconds (user + system) the controller has used so far: steadier than wall
# time on a loaded machine.
cpu() { python3 -c 'import os,sys; f=open(f"/proc/{sys.argv[1]}/stat").read().rsplit(")",1)[1].split(); print((int(f[11])+int(f[12]))/os.sysconf("SC_CLK_TCK"))' "$PID"; }
timed() {
  local what=$1; shift
  local c0 s0 s1 c1
  c0=$(cpu); s0=$(date +%s.%N)
  "$BIN" import "$DIR/file.ndjson" --batch "${BATCH:-2000}" "$@"
  s1=$(date +%s.%N); c1=$(cpu)
  python3 -c "import sys; n=int(sys.argv[1]); s=float(sys.argv[3])-float(sys.argv[2]); c=float(sys.argv[5])-float(sys.argv[4]); print(f'{sys.argv[6]}: {n} lines in {s:.2f} s = {n/s:.0f} lines/s; controller CPU {c:.2f} s = {1000*c/n:.3f} s per 1,000 lines')" "$LINES" "$s0" "$s1" "$c0" "$c1" "$what"
}
echo "load average at the start: $(cut -d' ' -f1-3 /proc/loadavg)"
timed "import (validation pass included)"
# Whatever the controller does after the commits (key material, builds) is not
# the import's; let it settle before the re-run.
sleep "${SETTLE:-5}"
timed "re-run (everything skipped)"
