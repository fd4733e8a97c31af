#!/usr/bin/env bash
# Import benchmark (not a test): a release controller on its own address with SQLite,
# the four domain clusters (no servers: placement needs clusters only), then
# `hostplane import` of bench/import/gen.py's file, timed.
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
START=$(date +%s.%N)
"$BIN" import "$DIR/file.ndjson" --batch "${BATCH:-2000}"
END=$(date +%s.%N)
python3 -c "import sys; n=int(sys.argv[1]); s=float(sys.argv[3])-float(sys.argv[2]); print(f'{n} objects in {s:.2f} s = {n/s:.0f} objects/s (validation pass included)')" "$LINES" "$START" "$END"
echo "re-run (everything skipped):"
START=$(date +%s.%N)
"$BIN" import "$DIR/file.ndjson" --batch "${BATCH:-2000}"
END=$(date +%s.%N)
python3 -c "import sys; n=int(sys.argv[1]); s=float(sys.argv[3])-float(sys.argv[2]); print(f'{n} lines in {s:.2f} s = {n/s:.0f} lines/s')" "$LINES" "$START" "$END"
