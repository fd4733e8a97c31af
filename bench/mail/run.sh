#!/usr/bin/env bash
# Mail benchmark: smtp-source (Postfix's load generator) pushes the same messages
# into hostplane's MX and into a private Postfix instance, each on its own
# loopback address, both acknowledging only durable mail:
#   - ours: 250 after the message file and the Maildir `new/` directory are fsynced;
#   - Postfix: 250 after the queue file is fsynced (its default), then delivers to
#     Maildir through `virtual` (which fsyncs too).
# Prints messages/s for each and the ratio ours/Postfix.
#
#   bench/mail/run.sh                    # MSGS=5000 SESS=20 SIZE=4096
#   MSGS=20000 SESS=50 bench/mail/run.sh
#
# Needs: apt packages postfix (provides smtp-source); root (Postfix runs as its
# own users). Leaves nothing behind: both servers are stopped on exit.
set -euo pipefail
cd "$(dirname "$0")/../.."

MSGS=${MSGS:-5000}
SESS=${SESS:-20}
SIZE=${SIZE:-4096}
OURS_IP=${OURS_IP:-127.0.77.1}
PF_IP=${PF_IP:-127.0.77.2}
PORT=${PORT:-2525}

command -v smtp-source >/dev/null || { echo "smtp-source missing: apt-get install postfix" >&2; exit 1; }
command -v postfix >/dev/null || { echo "postfix missing: apt-get install postfix" >&2; exit 1; }

WORK=$(mktemp -d /tmp/hp-mail-bench.XXXXXX)
chmod 755 "$WORK"
MX_PID=
cleanup() {
  [ -n "$MX_PID" ] && kill "$MX_PID" 2>/dev/null || true
  postfix -c "$WORK/pf" stop >/dev/null 2>&1 || true
  [ -n "${KEEP:-}" ] || rm -rf "$WORK"
}
trap cleanup EXIT

cargo build --release -q -p role-mail --bin mail-mx

# --- ours
echo '{"domains":[{"domain":"bench.test","primary":true,"mailboxes":["user"]}]}' >"$WORK/ours.json"
target/release/mail-mx "$OURS_IP" "$PORT" "$WORK/ours" "$WORK/ours.json" >"$WORK/mx.log" 2>&1 &
MX_PID=$!

# --- Postfix, private instance
mkdir -p "$WORK/pf" "$WORK/pf-queue" "$WORK/pf-data" "$WORK/vmail"
chown postfix "$WORK/pf-data"
chown nobody:nogroup "$WORK/vmail"
echo "user@bench.test bench.test/user/Maildir/" >"$WORK/pf/vmailbox"
cat >"$WORK/pf/main.cf" <<CF
compatibility_level = 3.6
queue_directory = $WORK/pf-queue
data_directory = $WORK/pf-data
mail_owner = postfix
setgid_group = postdrop
inet_interfaces = all
inet_protocols = ipv4
myhostname = pf.bench
mydestination =
local_recipient_maps =
alias_maps =
alias_database =
mynetworks = 127.0.0.0/8
smtpd_recipient_restrictions = permit_mynetworks, reject_unauth_destination
smtpd_client_connection_count_limit = 0
virtual_mailbox_domains = bench.test
virtual_mailbox_base = $WORK/vmail
virtual_mailbox_maps = texthash:$WORK/pf/vmailbox
virtual_uid_maps = static:$(id -u nobody)
virtual_gid_maps = static:$(getent group nogroup | cut -d: -f3)
virtual_minimum_uid = 1
default_process_limit = 200
maillog_file_prefixes = /tmp
maillog_file = $WORK/pf/maillog
smtputf8_enable = no
# we do no reverse DNS either
smtpd_peername_lookup = no
biff = no
CF
cat >"$WORK/pf/master.cf" <<CF
$PF_IP:$PORT inet n - n - - smtpd
pickup    unix  n - n 60 1 pickup
cleanup   unix  n - n - 0 cleanup
qmgr      unix  n - n 300 1 qmgr
rewrite   unix  - - n - - trivial-rewrite
bounce    unix  - - n - 0 bounce
defer     unix  - - n - 0 bounce
trace     unix  - - n - 0 bounce
verify    unix  - - n - 1 verify
flush     unix  n - n 1000? 0 flush
proxymap  unix  - - n - - proxymap
proxywrite unix - - n - 1 proxymap
smtp      unix  - - n - - smtp
relay     unix  - - n - - smtp
showq     unix  n - n - - showq
error     unix  - - n - - error
retry     unix  - - n - - error
discard   unix  - - n - - discard
local     unix  - n n - - local
virtual   unix  - n n - - virtual
anvil     unix  - - n - 1 anvil
scache    unix  - - n - 1 scache
postlog   unix-dgram n - n - 1 postlogd
CF
postfix -c "$WORK/pf" check || { script -qc "postfix -c $WORK/pf check" /dev/null >&2; exit 1; }
postfix -c "$WORK/pf" start >/dev/null

wait_port() {
  for _ in $(seq 1 200); do
    if (exec 3<>"/dev/tcp/$1/$2") 2>/dev/null; then return 0; fi
    sleep 0.1
  done
  echo "nothing listens on $1:$2" >&2
  exit 1
}
wait_port "$OURS_IP" "$PORT"
wait_port "$PF_IP" "$PORT"

count() { find "$1" -type f -path '*/new/*' 2>/dev/null | wc -l; }

run() { # name ip
  local t0 t1
  t0=$(date +%s.%N)
  smtp-source -s "$SESS" -l "$SIZE" -m "$MSGS" -f bench@sender.test -t user@bench.test "$2:$PORT"
  t1=$(date +%s.%N)
  echo "$1 $(echo "$t0 $t1" | awk -v m="$MSGS" '{printf "%.1f", m/($2-$1)}')"
}

# warm-up (connection setup, page cache), then the measured runs
MSGS_SAVE=$MSGS; MSGS=200
run warm "$OURS_IP" >/dev/null; run warm "$PF_IP" >/dev/null
MSGS=$MSGS_SAVE

ours=$(run ours "$OURS_IP" | awk '{print $2}')
pf=$(run postfix "$PF_IP" | awk '{print $2}')

# every acknowledged message is really there (Postfix delivers after its 250)
want=$((MSGS + 200))
for _ in $(seq 1 600); do
  [ "$(count "$WORK/vmail")" -ge "$want" ] && break
  sleep 0.5
done
echo "delivered: ours $(count "$WORK/ours/mail") / postfix $(count "$WORK/vmail") of $want"
echo "msgs=$MSGS sessions=$SESS size=$SIZE"
echo "hostplane MX: $ours msg/s"
echo "Postfix:      $pf msg/s"
echo "ratio:        $(echo "$ours $pf" | awk '{printf "%.2f", $1/$2}')x"
