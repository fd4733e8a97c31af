#!/usr/bin/env bash
# bench/ftp: 1 GiB upload and download through hostplane's FTP server vs vsftpd, both
# plain FTP on their own loopback address, driven by curl (passive mode). Prints MB/s
# and the ratio ours/vsftpd. Our server fsyncs every upload (file + folder) before its
# 226 reply; vsftpd does not.
#
#   bash bench/ftp/run.sh            # SIZE_MB=1024 ROUNDS=2 by default
#
# Needs: curl, vsftpd (apt-get install -y curl vsftpd), root (vsftpd drops to `ftp`).
set -euo pipefail
cd "$(dirname "$0")/../.."
SIZE_MB=${SIZE_MB:-1024}
ROUNDS=${ROUNDS:-2}
OURS_IP=${OURS_IP:-127.0.0.61}
VSFTPD_IP=${VSFTPD_IP:-127.0.0.62}
PORT=2121

for t in curl vsftpd; do command -v $t >/dev/null || [ -x /usr/sbin/$t ] || { echo "missing $t: apt-get install -y $t" >&2; exit 1; }; done

cargo build --release -q -p role-files --example ftpd
BIN=target/release/examples/ftpd

WORK=$(mktemp -d /tmp/hp-ftp-bench.XXXXXX)
PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$WORK"; }
trap cleanup EXIT

echo "making a ${SIZE_MB} MiB test file..."
head -c "$((SIZE_MB * 1024 * 1024))" /dev/urandom > "$WORK/src.bin"

# ours
"$BIN" "$OURS_IP:$PORT" "$WORK/ours" bench benchpw 33000-33099 2>"$WORK/ours.log" &
PIDS+=($!)

# vsftpd: anonymous uploads into a folder the ftp user owns (root stays read-only)
mkdir -p "$WORK/vs/root/up" /var/run/vsftpd/empty
chown ftp:ftp "$WORK/vs/root/up"
chmod 755 "$WORK/vs/root"
cat > "$WORK/vs/vsftpd.conf" <<CONF
listen=YES
listen_ipv6=NO
listen_address=$VSFTPD_IP
listen_port=$PORT
background=NO
anonymous_enable=YES
no_anon_password=YES
anon_root=$WORK/vs/root
write_enable=YES
anon_upload_enable=YES
anon_other_write_enable=YES
anon_umask=022
local_enable=NO
pasv_enable=YES
pasv_min_port=34000
pasv_max_port=34099
seccomp_sandbox=NO
xferlog_enable=NO
secure_chroot_dir=/var/run/vsftpd/empty
CONF
/usr/sbin/vsftpd "$WORK/vs/vsftpd.conf" 2>"$WORK/vs.log" &
PIDS+=($!)

for i in $(seq 50); do
  if curl -s --max-time 2 -u bench:benchpw "ftp://$OURS_IP:$PORT/" >/dev/null && curl -s --max-time 2 "ftp://$VSFTPD_IP:$PORT/" >/dev/null; then break; fi
  sleep 0.2
done

now() { date +%s.%N; }
mbps() { echo "scale=1; $SIZE_MB * 1.048576 / ($2 - $1)" | bc; }

# run <label> <upload-url> <download-url> <curl auth args...>
best_up=(); best_down=()
run() {
  local label=$1 up=$2 down=$3; shift 3
  local bu=0 bd=0
  for r in $(seq "$ROUNDS"); do
    sync; echo 3 > /proc/sys/vm/drop_caches 2>/dev/null || true
    local t0 t1 t2
    t0=$(now); curl -sS "$@" -T "$WORK/src.bin" "$up"; t1=$(now)
    curl -sS "$@" -o /dev/null "$down"; t2=$(now)
    local u d; u=$(mbps "$t0" "$t1"); d=$(mbps "$t1" "$t2")
    echo "  $label round $r: upload $u MB/s, download $d MB/s"
    bu=$(echo "if ($u > $bu) $u else $bu" | bc); bd=$(echo "if ($d > $bd) $d else $bd" | bc)
  done
  best_up+=("$bu"); best_down+=("$bd")
}

echo "hostplane ftp ($OURS_IP):"
run ours "ftp://$OURS_IP:$PORT/big.bin" "ftp://$OURS_IP:$PORT/big.bin" -u bench:benchpw
cmp "$WORK/src.bin" "$WORK/ours/bench.example/big.bin"
echo "vsftpd ($VSFTPD_IP):"
run vsftpd "ftp://$VSFTPD_IP:$PORT/up/big.bin" "ftp://$VSFTPD_IP:$PORT/up/big.bin" -u anonymous:x
cmp "$WORK/src.bin" "$WORK/vs/root/up/big.bin"

echo
printf "%-10s %12s %12s\n" "" "upload MB/s" "download MB/s"
printf "%-10s %12s %12s\n" ours "${best_up[0]}" "${best_down[0]}"
printf "%-10s %12s %12s\n" vsftpd "${best_up[1]}" "${best_down[1]}"
printf "%-10s %12s %12s\n" ratio "$(echo "scale=2; ${best_up[0]} / ${best_up[1]}" | bc)" "$(echo "scale=2; ${best_down[0]} / ${best_down[1]}" | bc)"
echo "(best of $ROUNDS rounds, ${SIZE_MB} MiB, plain FTP, passive, page cache dropped before each round)"
