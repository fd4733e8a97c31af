#!/usr/bin/env bash
# bench/web/deployed.sh — the web engine as `hostplane up` deploys it (inside the agent of
# web-1, per-site access log on, the engine's default threads) against nginx configured
# alike (access log on with the same buffering, the same worker count), on the same files:
# plain HTTP with wrk (1 KiB, 100 KiB, 10 MiB) and HTTPS/HTTP2 with h2load (1 KiB, 100 KiB).
# Prints req/s of each and the ratio ours/nginx (issue 15 point 8 targets: >= 1.2 for
# 1 KiB and 100 KiB plain and h2, >= 1.0 for 10 MiB plain).
#
#   hostplane up &                       # in another terminal (as root: ports 80/443), then:
#   HP=target/release/hostplane bash bench/web/deployed.sh
#
# Options (environment): ROUNDS=3 DURATION=10s CONNECTIONS=64 THREADS=2 H2_REQUESTS=200000
#   H2_CLIENTS=32 H2_STREAMS=16 OURS=127.0.0.11 NGINX_ADDR=127.0.0.62 WORKERS=$(nproc)
#   NGINX_OPEN_FILE_CACHE=1 (nginx's open-file cache, off by default, the counterpart of
#   our 1 ms hot-file cache). Needs wrk, h2load (nghttp2-client), nginx, openssl, curl.
set -euo pipefail
cd "$(dirname "$0")"
HP=${HP:-hostplane}; D=${DOMAIN:-bench-web.example}
OURS=${OURS:-127.0.0.11}; NGINX_ADDR=${NGINX_ADDR:-127.0.0.62}
ROUNDS=${ROUNDS:-3}; DURATION=${DURATION:-10s}; CONNECTIONS=${CONNECTIONS:-64}; THREADS=${THREADS:-2}
H2_REQUESTS=${H2_REQUESTS:-200000}; H2_CLIENTS=${H2_CLIENTS:-32}; H2_STREAMS=${H2_STREAMS:-16}
WORKERS=${WORKERS:-$(nproc)}
for tool in wrk h2load nginx openssl curl; do
    command -v "$tool" >/dev/null || { echo "missing $tool (apt-get install wrk nghttp2-client nginx openssl curl)" >&2; exit 1; }
done
W=$(mktemp -d /tmp/hp-bench-web.XXXXXX)
nginx_pid=""
cleanup() {
    [ -n "$nginx_pid" ] && kill "$nginx_pid" 2>/dev/null || true
    wait 2>/dev/null || true
    $HP domain delete "$D" >/dev/null 2>&1 || $HP domain delete "$D" --force >/dev/null 2>&1 || true
    rm -rf "$W"
}
trap cleanup EXIT

# The site on the platform, and the same files for nginx.
mkdir -p "$W/site"
head -c 1024 /dev/urandom >"$W/site/1k.bin"
head -c 102400 /dev/urandom >"$W/site/100k.bin"
head -c 10485760 /dev/urandom >"$W/site/10m.bin"
chmod -R a+rX "$W"
$HP customer add bench-web >/dev/null 2>&1 || true
$HP domain add "$D" --customer bench-web >/dev/null
$HP site add "$D" --mode all >/dev/null
$HP site upload "$D" "$W/site" >/dev/null
for _ in $(seq 1 150); do
    if cmp -s <(curl -s -H "Host: $D" "http://$OURS/10m.bin") "$W/site/10m.bin"; then break; fi
    sleep 0.2
done
cmp <(curl -s -H "Host: $D" "http://$OURS/10m.bin") "$W/site/10m.bin"

# nginx: access log on, buffered like ours (lines batched in memory, written at least
# every second), the engine's worker count, sendfile, HTTP/2 over TLS.
mkdir -p "$W/nginx"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 -subj "/CN=$D" \
    -addext "subjectAltName=DNS:$D" -keyout "$W/nginx/key.pem" -out "$W/nginx/cert.pem" 2>/dev/null
ofc=""
[ -n "${NGINX_OPEN_FILE_CACHE:-}" ] && ofc="open_file_cache max=4096 inactive=20s; open_file_cache_valid 1s;"
cat >"$W/nginx/nginx.conf" <<EOF
worker_processes $WORKERS;
pid $W/nginx/nginx.pid;
error_log $W/nginx/error.log;
events { worker_connections 4096; }
http {
    include /etc/nginx/mime.types;
    default_type application/octet-stream;
    access_log $W/nginx/access.log combined buffer=64k flush=100ms;
    sendfile on; tcp_nopush on; tcp_nodelay on;
    keepalive_requests 1000000;
    $ofc
    client_body_temp_path $W/nginx/body; proxy_temp_path $W/nginx/proxy;
    fastcgi_temp_path $W/nginx/fastcgi; uwsgi_temp_path $W/nginx/uwsgi; scgi_temp_path $W/nginx/scgi;
    server {
        listen $NGINX_ADDR:80;
        listen $NGINX_ADDR:443 ssl http2;
        ssl_certificate $W/nginx/cert.pem; ssl_certificate_key $W/nginx/key.pem;
        server_name $D;
        root $W/site;
    }
}
EOF
nginx -c "$W/nginx/nginx.conf" -g 'daemon off;' &
nginx_pid=$!
for _ in $(seq 1 50); do curl -sf -o /dev/null -H "Host: $D" "http://$NGINX_ADDR/1k.bin" && break; sleep 0.1; done

wrk_rps() { # addr file
    wrk -t"$THREADS" -c"$CONNECTIONS" -d"$DURATION" -H "Host: $D" "http://$1/$2" |
        awk '/^Requests\/sec:/ {print $2}'
}
h2_rps() { # addr file
    h2load -n "$H2_REQUESTS" -c "$H2_CLIENTS" -m "$H2_STREAMS" --connect-to="$1:443" "https://$D/$2" 2>&1 |
        awk '/^finished in/ {gsub(",", "", $4); print $4}'
}
median() { python3 -c 'import sys,statistics; print(statistics.median(float(x) for x in sys.argv[1:]))' "$@"; }

echo "ours: web-1 ($OURS) as deployed by hostplane up; nginx $NGINX_ADDR, $WORKERS workers, access log buffer=64k flush=100ms"
echo "plain: wrk -t$THREADS -c$CONNECTIONS -d$DURATION; h2: h2load -n $H2_REQUESTS -c $H2_CLIENTS -m $H2_STREAMS; $ROUNDS rounds alternating, median"
printf '%-12s %12s %12s %7s   %s\n' case "ours req/s" "nginx req/s" ratio rounds
bench() { # name fn file
    local name=$1 fn=$2 file=$3 o=() n=() r
    for _ in $(seq 1 "$ROUNDS"); do
        r=$($fn "$OURS" "$file"); o+=("${r:-0}")
        r=$($fn "$NGINX_ADDR" "$file"); n+=("${r:-0}")
    done
    local om nm
    om=$(median "${o[@]}"); nm=$(median "${n[@]}")
    printf '%-12s %12.0f %12.0f %6.2fx   ours %s / nginx %s\n' "$name" "$om" "$nm" \
        "$(python3 -c "print($om / $nm if $nm else 0)")" "${o[*]}" "${n[*]}"
}
bench "plain 1k" wrk_rps 1k.bin
bench "plain 100k" wrk_rps 100k.bin
bench "plain 10m" wrk_rps 10m.bin
bench "h2 1k" h2_rps 1k.bin
bench "h2 100k" h2_rps 100k.bin
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
