#!/usr/bin/env bash
# Engines at scale (issue 13 point 5; a benchmark, not a test): a release
# `hostplane up` in a scratch directory, filled through the API's bulk import
# (`POST /v1/import`) with domains + sites (+ a pre-hashed mailbox each), and after
# each step every agent's and the controller's RSS and every desired config's size.
#
#   cargo build --release -p hostplane
#   BIN=$CARGO_TARGET_DIR/release/hostplane bench/scale/run.sh [STEP ...]   # default: 10000 100000
#
# Environment: PHP_EVERY (a PHP site every N domains, default 100; 0: none),
# MAILBOXES (1/0, default 1), WAIT (seconds to wait for convergence, default 1800),
# DIR (scratch dir, default a new /tmp/hp-scale.*), KEEP=1 keeps `up` running at the
# end (stop it with `kill -INT <pid>`; the script prints it).
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
BIN=$(realpath "${BIN:-${CARGO_TARGET_DIR:-target}/release/hostplane}")
STEPS=${*:-10000 100000}
DIR=${DIR:-$(mktemp -d /tmp/hp-scale.XXXXXX)}
export HOSTPLANE_CONFIG="$DIR/cli.toml"
cd "$DIR"
"$BIN" up --data-dir "$DIR/up" > "$DIR/up.log" 2>&1 &
UP=$!
echo "up: pid $UP, data $DIR/up, log $DIR/up.log"
if [ "${KEEP:-0}" != 1 ]; then
    trap 'kill -INT $UP 2>/dev/null || true; wait $UP 2>/dev/null || true' EXIT
fi
for _ in $(seq 300); do
    "$BIN" status > /dev/null 2>&1 && break
    sleep 1
done
python3 "$HERE/measure.py" "$BIN" "$DIR/up" "empty platform" --wait 300
PREV=0
for N in $STEPS; do
    python3 "$HERE/gen.py" "$PREV" "$N" "${PHP_EVERY:-100}" "${MAILBOXES:-1}" > "$DIR/fill-$N.ndjson"
    LINES=$(wc -l < "$DIR/fill-$N.ndjson")
    START=$(date +%s.%N)
    "$BIN" import "$DIR/fill-$N.ndjson" --batch 2000 > "$DIR/import-$N.log" 2>&1
    END=$(date +%s.%N)
    tail -n 3 "$DIR/import-$N.log"
    python3 -c "import sys; n=int(sys.argv[1]); s=float(sys.argv[3])-float(sys.argv[2]); print(f'import to {sys.argv[4]}: {n} objects in {s:.0f} s = {n/s:.0f} objects/s')" "$LINES" "$START" "$END" "$N"
    python3 "$HERE/measure.py" "$BIN" "$DIR/up" "$N domains with sites" --wait "${WAIT:-1800}"
    echo "load: $(cut -d' ' -f1-3 /proc/loadavg)"
    PREV=$N
done
