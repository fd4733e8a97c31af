#!/usr/bin/env bash
# DNS benchmark: our engine vs Knot vs NSD, each serving the same 10,000 zones on its
# own loopback address, measured with dnsperf (same query file, same duration); then
# change -> answered by the secondary (our primary -> our secondary, NOTIFY + IXFR).
#
# Usage: bench/dns/run.sh [zones=10000] [seconds=10] [changes=200]   (KEEP=1 keeps the work dir)
# Env: ZONES / SECONDS_PER_RUN / CHANGES override the arguments; WORKERS (default 1) is
# the worker count of all three servers (our dns_udp_workers, Knot udp-workers, NSD
# server-count); SKIP_PROPAGATE=1 skips the change -> secondary run; BIN= an already
# built serve_zones (else it is built with cargo, honouring CARGO_TARGET_DIR).
# Ours runs as deployed: the engine inside the agent's Supervisor, applied from the
# JSON config, logs on (RUST_LOG, default info). After the query runs, each server's
# RSS (VmRSS) is printed, and each server's CPU time (user+sys, all its threads and
# processes, from /proc/PID/stat) per answered query.
# Needs: apt packages knot nsd dnsperf knot-dnsutils (and a release build of role-dns' example).
set -euo pipefail
ZONES=${ZONES:-${1:-10000}}
SECONDS_PER_RUN=${SECONDS_PER_RUN:-${2:-10}}
CHANGES=${CHANGES:-${3:-200}}
WORKERS=${WORKERS:-1}
PORT=10054
OURS=127.0.5.1 KNOT=127.0.5.2 NSD=127.0.5.3 PRI=127.0.5.11 SEC=127.0.5.12
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
WORK=$(mktemp -d /tmp/bench-dns.XXXXXX)
PIDS=()
cleanup() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
  if [ -z "${KEEP:-}" ]; then rm -rf "$WORK"; else echo "kept $WORK" >&2; fi
}
trap cleanup EXIT INT TERM
for tool in dnsperf knotd nsd kdig; do
  command -v "$tool" >/dev/null || { echo "missing $tool (apt-get install knot nsd dnsperf knot-dnsutils)" >&2; exit 1; }
done

cd "$ROOT"
if [ -z "${BIN:-}" ]; then
  cargo build --release -p role-dns --example serve_zones >&2
  BIN="${CARGO_TARGET_DIR:-$ROOT/target}/release/examples/serve_zones"
fi
"$BIN" gen "$WORK" "$ZONES"

# Knot
mkdir -p "$WORK/knot"
{
  printf 'server:\n    rundir: "%s/knot"\n    listen: %s@%s\n    udp-workers: %d\n    tcp-workers: 1\n    background-workers: 1\n' "$WORK" "$KNOT" "$PORT" "$WORKERS"
  printf 'log:\n  - target: stderr\n    any: warning\n'
  printf 'database:\n    storage: "%s/knot"\n' "$WORK"
  printf 'template:\n  - id: default\n    storage: "%s/zones"\n    file: "%%s.zone"\n    zonefile-sync: -1\n    journal-content: none\n' "$WORK"
  printf 'zone:\n'
  printf '  - domain: cmp.bench\n'
  for ((i = 0; i < ZONES; i++)); do printf '  - domain: z%d.bench\n' "$i"; done
} > "$WORK/knot/knot.conf"

# NSD
mkdir -p "$WORK/nsd"
{
  printf 'server:\n    ip-address: %s@%s\n    server-count: %d\n    username: ""\n    database: ""\n    zonesdir: "%s/zones"\n    pidfile: "%s/nsd/nsd.pid"\n    xfrdfile: "%s/nsd/xfrd.state"\n    zonelistfile: "%s/nsd/zone.list"\n    logfile: "%s/nsd/nsd.log"\n    verbosity: 0\n' "$NSD" "$PORT" "$WORKERS" "$WORK" "$WORK" "$WORK" "$WORK" "$WORK"
  printf 'remote-control:\n    control-enable: no\n'
  printf 'zone:\n    name: cmp.bench\n    zonefile: cmp.bench.zone\n'
  for ((i = 0; i < ZONES; i++)); do printf 'zone:\n    name: z%d.bench\n    zonefile: z%d.bench.zone\n' "$i" "$i"; done
} > "$WORK/nsd/nsd.conf"

wait_up() { # ip name
  for _ in $(seq 1 600); do
    if kdig @"$1" -p "$PORT" "www.z$((ZONES - 1)).bench" A +short +time=1 +retry=0 2>/dev/null | grep -q .; then return 0; fi
    sleep 0.2
  done
  echo "$2 did not come up" >&2; exit 1
}

procs() { # pid -> the pid and all its descendants (NSD's first process becomes xfrd,
  # its child the main process, whose children serve)
  echo "$1"
  local c
  for c in $(cat /proc/"$1"/task/*/children 2>/dev/null); do procs "$c"; done
}
cpu_ticks() { # pid -> utime+stime (clock ticks) of the process and its children
  local t=0 p
  for p in $(procs "$1"); do
    # Fields after "pid (comm) ": the name may hold spaces (NSD's "nsd: xfrd").
    t=$((t + $(sed 's/^.*) //' /proc/"$p"/stat 2>/dev/null | awk '{print $12 + $13}' || echo 0)))
  done
  echo "$t"
}
HZ=$(getconf CLK_TCK)

run_perf() { # ip name pid
  local before after
  before=$(cpu_ticks "$3")
  dnsperf -s "$1" -p "$PORT" -d "$WORK/queries.txt" -l "$SECONDS_PER_RUN" -c 8 -T 1 -q 200 > "$WORK/$2.perf" 2>&1
  after=$(cpu_ticks "$3")
  local qps lat lost answered cpu
  qps=$(awk '/Queries per second/ {print $4}' "$WORK/$2.perf")
  lat=$(awk '/Average Latency/ {print $4}' "$WORK/$2.perf")
  lost=$(awk '/Queries lost/ {print $3}' "$WORK/$2.perf")
  answered=$(awk '/Queries completed/ {print $3}' "$WORK/$2.perf")
  # CPU time of the server (all its threads and processes) per answered query, in
  # microseconds: steadier than QPS on a loaded machine.
  cpu=$(echo "($after - $before) * 1000000 / $HZ / $answered" | bc -l)
  echo "$2 $qps $lat $lost $cpu"
  grep -E 'Response codes' "$WORK/$2.perf" | sed "s/^/  $2 /" >&2
}

DNS_UDP_WORKERS=$WORKERS "$BIN" serve "$OURS" "$PORT" "$ZONES" > "$WORK/ours.log" 2>&1 & PIDS+=($!); OURS_PID=$!
knotd -c "$WORK/knot/knot.conf" > "$WORK/knot.log" 2>&1 & PIDS+=($!); KNOT_PID=$!
nsd -d -c "$WORK/nsd/nsd.conf" > "$WORK/nsd.log" 2>&1 & PIDS+=($!); NSD_PID=$!
wait_up "$OURS" ours; wait_up "$KNOT" knot; wait_up "$NSD" nsd

# Answers compared with NSD's (and Knot's) for the kinds of answer a hosted zone
# gives: header flags and rcode, then each section sorted (servers may order the
# records of an RRset differently); only the message id and timing are dropped.
kdig_norm() { # ip name type [+dnssec etc]
  kdig @"$1" -p "$PORT" "$2" "$3" +norecurse +time=2 +retry=1 "${@:4}" 2>&1 |
    sed -E -e 's/; id: [0-9]+//' -e '/^;; (Received|From|Time)/d' -e '/^$/d' |
    awk '/^;;/ {close("sort"); print; fflush(); next} {print | "sort"} END {close("sort")}' 
}
COMPARE=("cmp.bench A" "cmp.bench MX" "cmp.bench TXT" "cmp.bench NS" "cmp.bench SOA"
  "www.cmp.bench A" "alias.cmp.bench A" "www.cmp.bench CNAME" "nx.cmp.bench A"
  "mail.cmp.bench TXT" "x.wild.cmp.bench A" "a.b.wild.cmp.bench TXT" "x.wild.cmp.bench MX"
  "sub.cmp.bench A" "host.sub.cmp.bench A" "sub.cmp.bench NS" "_sip._tcp.cmp.bench SRV"
  "_tcp.cmp.bench A" "www.z0.bench A" "z0.bench MX" "hp1._domainkey.z0.bench TXT"
  "nx1.z0.bench A" "WwW.Z1.bench A" "cmp.bench ANY" "www.other.test A")
same=0; differ=0
for q in "${COMPARE[@]}"; do
  set -- $q
  for other in "nsd $NSD" "knot $KNOT"; do
    set -- $q $other
    if diff <(kdig_norm "$OURS" "$1" "$2") <(kdig_norm "$4" "$1" "$2") > "$WORK/diff" 2>&1; then
      same=$((same + 1))
    else
      differ=$((differ + 1))
      { echo "== $1 $2: ours (<) vs $3 (>)"; cat "$WORK/diff"; } >&2
    fi
  done
done
echo "answers compared with kdig: $same identical, $differ different (${#COMPARE[@]} questions, against nsd and knot)"

RESULTS=()
for target in "ours $OURS $OURS_PID" "knot $KNOT $KNOT_PID" "nsd $NSD $NSD_PID"; do
  set -- $target
  RESULTS+=("$(run_perf "$2" "$1" "$3")")
done

echo
echo "dnsperf, $ZONES zones, ${SECONDS_PER_RUN} s each, 8 clients, 1 thread, same query file (60% www A, 20% MX, 20% NXDOMAIN)"
printf '%-6s %12s %16s %8s %14s\n' server QPS "avg latency ms" lost "CPU us/query"
for r in "${RESULTS[@]}"; do
  set -- $r
  printf '%-6s %12.0f %16.3f %8s %14.2f\n' "$1" "$2" "$(echo "$3 * 1000" | bc -l)" "$4" "$5"
done
ours=$(echo "${RESULTS[0]}" | awk '{print $2}')
knot=$(echo "${RESULTS[1]}" | awk '{print $2}')
nsd=$(echo "${RESULTS[2]}" | awk '{print $2}')
printf 'ours/nsd %.2fx   ours/knot %.2fx\n' "$(echo "$ours / $nsd" | bc -l)" "$(echo "$ours / $knot" | bc -l)"
cours=$(echo "${RESULTS[0]}" | awk '{print $5}')
cknot=$(echo "${RESULTS[1]}" | awk '{print $5}')
cnsd=$(echo "${RESULTS[2]}" | awk '{print $5}')
printf 'CPU per query: nsd/ours %.2fx   knot/ours %.2fx (higher: ours cheaper)\n' "$(echo "$cnsd / $cours" | bc -l)" "$(echo "$cknot / $cours" | bc -l)"

# Memory of each server after serving the queries: VmRSS of its main process and PSS
# (proportional set size, shared pages split between sharers) summed over all its
# processes (NSD forks xfrd and its servers; the others are one process).
mem_kib() { # field files...
  local field=$1; shift
  awk -v f="$field:" '$1 == f {s += $2} END {print s + 0}' "$@" 2>/dev/null
}
for s in "ours $OURS_PID" "knot $KNOT_PID" "nsd $NSD_PID"; do
  set -- $s
  files=(); for p in $(procs "$2"); do files+=(/proc/"$p"/smaps_rollup); done
  printf 'memory %-5s RSS %6.0f MiB   PSS %6.0f MiB (%d processes)\n' "$1" \
    "$(echo "$(mem_kib VmRSS /proc/"$2"/status) / 1024" | bc -l)" \
    "$(echo "$(mem_kib Pss "${files[@]}") / 1024" | bc -l)" "${#files[@]}"
done
grep -m1 'serving' "$WORK/ours.log" >&2 || true
[ -n "${SKIP_PROPAGATE:-}" ] && exit 0

# Stop the servers before the propagation run (it needs the CPU).
for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
PIDS=()
echo
"$BIN" propagate "$PRI" "$SEC" "$PORT" "$ZONES" "$CHANGES"
