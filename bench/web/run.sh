#!/usr/bin/env bash
# bench/web/run.sh — static-file throughput of hostplane's web engine vs nginx.
#
# Both serve the same 1 KiB and 100 KiB files from the same directory, plain HTTP,
# keep-alive, access log off, each on its own 127.0.0.x address; the load is
# `wrk -t2 -c64 -d10s --latency` with the site's Host header. Prints req/s, p99 and
# the server's CPU time per request for each, and the req/s ratio ours/nginx
# (target: >= 1.0).
#
# Needs: wrk, nginx (apt-get install wrk nginx), curl. Options (environment):
#   DURATION=10s  THREADS=2  CONNECTIONS=64  ROUNDS=3  OURS_ADDR=127.0.0.61:18080
#   NGINX_ADDR=127.0.0.62:18080  NGINX_WORKERS=auto  SKIP_BUILD=1 (use the last build)
#   NGINX_OPEN_FILE_CACHE=1 (give nginx its open-file cache too, the counterpart of
#   our 1 ms hot-file cache; nginx's default is off)
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
nginx_ofc=""
if [ -n "${NGINX_OPEN_FILE_CACHE:-}" ]; then
    nginx_ofc="open_file_cache max=4096 inactive=20s; open_file_cache_valid 1s;"
    echo "nginx: open_file_cache on (max=4096, valid 1s)" >&2
fi
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
    $nginx_ofc
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

# CPU time (user + system, in clock ticks) the given processes have used so far.
cpu_ticks() {
    local total=0 pid
    for pid in "$@"; do
        # Fields 14 and 15 of /proc/PID/stat (after the parenthesised name).
        read -r ut st < <(sed 's/^.*) //' "/proc/$pid/stat" | awk '{print $12, $13}')
        total=$((total + ut + st))
    done
    echo "$total"
}
clk_tck=$(getconf CLK_TCK)
ours_pid=${pids[0]}
nginx_workers() { pgrep -P "${pids[1]}" | tr '\n' ' '; }

run_wrk() { # addr file pids... -> "req/s p99_ms cpu_us_per_request"
    local addr=$1 file=$2 out before after
    shift 2
    before=$(cpu_ticks "$@")
    out=$(wrk -t"$THREADS" -c"$CONNECTIONS" -d"$DURATION" --latency -H "Host: $HOST" "http://$addr/$file")
    after=$(cpu_ticks "$@")
    echo "$out" >>"$work/wrk.log"
    local rps p99 reqs
    rps=$(echo "$out" | awk '/^Requests\/sec:/ {print $2}')
    reqs=$(echo "$out" | awk '/requests in/ {print $1}')
    # wrk prints the latency with its own unit (us, ms, s): normalise to ms.
    p99=$(echo "$out" | awk '$1 == "99%" {v=$2; u=v; sub(/[0-9.]+/, "", u); sub(/[a-z]+$/, "", v);
        if (u == "us") v /= 1000; else if (u == "s") v *= 1000; printf "%.2f", v}')
    local cpu
    cpu=$(python3 -c "print(f'{($after - $before) / $clk_tck * 1e6 / $reqs:.1f}')")
    echo "$rps $p99 $cpu"
}

echo "wrk -t$THREADS -c$CONNECTIONS -d$DURATION --latency -H 'Host: $HOST' (keep-alive), $ROUNDS round(s), ours and nginx alternating; median shown"
echo "(cpu/req: the server's own user+system CPU time per request, a steadier figure than req/s when wrk shares the cores)"
printf '%-9s %12s %9s %8s  %12s %9s %8s  %7s\n' file "ours req/s" "p99 ms" "cpu/req" "nginx req/s" "p99 ms" "cpu/req" ratio
median() { python3 -c 'import sys,statistics; print(statistics.median(float(x) for x in sys.argv[1:]))' "$@"; }
for f in 1k.bin 100k.bin; do
    o_rps=() o_p99=() o_cpu=() n_rps=() n_p99=() n_cpu=()
    for _ in $(seq 1 "$ROUNDS"); do
        read -r r p c < <(run_wrk "$OURS_ADDR" "$f" "$ours_pid"); o_rps+=("$r"); o_p99+=("$p"); o_cpu+=("$c")
        # shellcheck disable=SC2046
        read -r r p c < <(run_wrk "$NGINX_ADDR" "$f" $(nginx_workers)); n_rps+=("$r"); n_p99+=("$p"); n_cpu+=("$c")
    done
    ours_rps=$(median "${o_rps[@]}"); ngx_rps=$(median "${n_rps[@]}")
    ratio=$(python3 -c "print(f'{$ours_rps / $ngx_rps:.2f}')")
    printf '%-9s %12.0f %9.2f %6.1fus  %12.0f %9.2f %6.1fus  %6sx\n' "$f" \
        "$ours_rps" "$(median "${o_p99[@]}")" "$(median "${o_cpu[@]}")" \
        "$ngx_rps" "$(median "${n_p99[@]}")" "$(median "${n_cpu[@]}")" "$ratio"
    if [ "$ROUNDS" -gt 1 ]; then
        echo "          rounds: ours ${o_rps[*]} / nginx ${n_rps[*]}"
    fi
done
