#!/usr/bin/env bash
# bench/web/run.sh — static-file throughput of hostplane's web engine vs nginx.
#
# Both serve the same 1 KiB and 100 KiB files from the same directory, plain HTTP,
# keep-alive, access log off, each on its own 127.0.0.x address; the load is
# `wrk -t2 -c64 -d10s --latency` with the site's Host header. Prints req/s and p99
# for each, and the ratio ours/nginx (target: >= 1.0).
#
# Needs: wrk, nginx (apt-get install wrk nginx), curl. Options (environment):
#   DURATION=10s  THREADS=2  CONNECTIONS=64  ROUNDS=3  OURS_ADDR=127.0.0.61:18080
#   NGINX_ADDR=127.0.0.62:18080  NGINX_WORKERS=auto  SKIP_BUILD=1 (use the last build)
set -euo pipefail

cd "$(dirname "$0")/../.."
DURATION=${DURATION:-10s}
THREADS=${THREADS:-2}
CONNECTIONS=${CONNECTIONS:-64}
OURS_ADDR=${OURS_ADDR:-127.0.0.61:18080}
NGINX_ADDR=${NGINX_ADDR:-127.0.0.62:18080}
NGINX_WORKERS=${NGINX_WORKERS:-auto}
ROUNDS=${ROUNDS:-3}
HOST=bench.example

for tool in wrk nginx curl; do
    command -v "$tool" >/dev/null || { echo "missing $tool (apt-get install $tool)" >&2; exit 1; }
done

work=$(mktemp -d /tmp/hostplane-bench-web.XXXXXX)
pids=()
cleanup() {
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
    wait 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT

# The same files for both servers, in the content layout the engine serves from.
site="$work/content/$HOST"
mkdir -p "$site/releases/r1"
head -c 1024 /dev/urandom >"$site/releases/r1/1k.bin"
head -c 102400 /dev/urandom >"$site/releases/r1/100k.bin"
ln -s releases/r1 "$site/current"
chmod -R a+rX "$work"

if [ -z "${SKIP_BUILD:-}" ]; then
    echo "building the engine (release)…" >&2
    cargo build --release -q -p role-web --example serve
fi
target_dir=$(cargo metadata --format-version 1 --no-deps |
    python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')
"$target_dir/release/examples/serve" "$work/content" "$OURS_ADDR" "$HOST" 2>"$work/ours.log" &
pids+=($!)

mkdir -p "$work/nginx"
cat >"$work/nginx/nginx.conf" <<EOF
worker_processes $NGINX_WORKERS;
pid $work/nginx/nginx.pid;
error_log $work/nginx/error.log;
events { worker_connections 4096; }
http {
    include /etc/nginx/mime.types;
    default_type application/octet-stream;
    access_log off;
    sendfile on;
    tcp_nopush on;
    tcp_nodelay on;
    keepalive_requests 1000000;
    client_body_temp_path $work/nginx/body;
    proxy_temp_path $work/nginx/proxy;
    fastcgi_temp_path $work/nginx/fastcgi;
    uwsgi_temp_path $work/nginx/uwsgi;
    scgi_temp_path $work/nginx/scgi;
    server {
        listen $NGINX_ADDR;
        server_name $HOST;
        root $site/current;
    }
}
EOF
nginx -c "$work/nginx/nginx.conf" -g 'daemon off;' &
pids+=($!)

wait_up() {
    for _ in $(seq 1 100); do
        if curl -sf -o /dev/null -H "Host: $HOST" "http://$1/1k.bin"; then return 0; fi
        sleep 0.1
    done
    echo "server on $1 did not come up" >&2
    exit 1
}
wait_up "$OURS_ADDR"
wait_up "$NGINX_ADDR"

# Both must serve the same bytes.
for f in 1k.bin 100k.bin; do
    cmp <(curl -s -H "Host: $HOST" "http://$OURS_ADDR/$f") <(curl -s -H "Host: $HOST" "http://$NGINX_ADDR/$f")
done

run_wrk() { # addr file -> "req/s p99"
    local out
    out=$(wrk -t"$THREADS" -c"$CONNECTIONS" -d"$DURATION" --latency -H "Host: $HOST" "http://$1/$2")
    echo "$out" >>"$work/wrk.log"
    local rps p99
    rps=$(echo "$out" | awk '/^Requests\/sec:/ {print $2}')
    p99=$(echo "$out" | awk '$1 == "99%" {print $2}')
    echo "$rps $p99"
}

echo "wrk -t$THREADS -c$CONNECTIONS -d$DURATION --latency -H 'Host: $HOST' (keep-alive), $ROUNDS round(s), ours and nginx alternating; median shown"
printf '%-9s %14s %10s %14s %10s %8s\n' file "ours req/s" "ours p99" "nginx req/s" "nginx p99" ratio
median() { python3 -c 'import sys,statistics; print(statistics.median(float(x) for x in sys.argv[1:]))' "$@"; }
for f in 1k.bin 100k.bin; do
    o_rps=() o_p99=() n_rps=() n_p99=()
    for _ in $(seq 1 "$ROUNDS"); do
        read -r r p < <(run_wrk "$OURS_ADDR" "$f"); o_rps+=("$r"); o_p99+=("$p")
        read -r r p < <(run_wrk "$NGINX_ADDR" "$f"); n_rps+=("$r"); n_p99+=("$p")
    done
    ours_rps=$(median "${o_rps[@]}"); ngx_rps=$(median "${n_rps[@]}")
    ours_p99=$(printf '%s\n' "${o_p99[@]}" | sort -V | sed -n "$(( (ROUNDS + 1) / 2 ))p")
    ngx_p99=$(printf '%s\n' "${n_p99[@]}" | sort -V | sed -n "$(( (ROUNDS + 1) / 2 ))p")
    ratio=$(python3 -c "print(f'{$ours_rps / $ngx_rps:.2f}')")
    printf '%-9s %14.0f %10s %14.0f %10s %8s\n' "$f" "$ours_rps" "$ours_p99" "$ngx_rps" "$ngx_p99" "${ratio}x"
    if [ "$ROUNDS" -gt 1 ]; then
        echo "          rounds: ours ${o_rps[*]} / nginx ${n_rps[*]}"
    fi
done
