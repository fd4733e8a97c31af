#!/usr/bin/env bash
# DNS benchmark: our engine vs Knot vs NSD, each serving the same 10,000 zones on its
# own loopback address, measured with dnsperf and with dns_load (same query file, same
# duration); then
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
#
# Pinning (default on; PIN=0 turns it off): every server runs on CPU SERVER_CPU
# (default 0) and the load generator on CPU CLIENT_CPU (default 1), with taskset, so
# that the load generator takes no CPU from the server. Each run prints the server's
# CPU use (% of one core), the softirq share and busyness of both CPUs, the load
# generator's CPU use, and `uptime`'s load: a server core full (server + softirq) and
# a client core with room left mean QPS is the server's.
# LOADGEN (default "dnsperf dns_load"): the load generators to run. On one core
# dnsperf costs about as much CPU per query as the servers and saturates first;
# dns_load (crates/role-dns/examples/dns_load.rs; LOAD_BIN=, default next to BIN)
# sends and receives in batches (sendmmsg/recvmmsg), so the server is the limit.
# NICE (default -20 as root, else 0): niceness of the servers and load generators. On
# a machine where other work keeps both CPUs busy, -20 gives the bench nearly all of
# its CPUs; under autogroup scheduling (each session gets an equal share whatever its
# niceness) the script re-runs itself in a new session (setsid) with that autogroup
# niceness.
# RUNS (default 1) repeats the query runs, interleaved (ours, knot, nsd, ours, ...),
# so that a load change on the machine hits every server alike.
# Needs: apt packages knot nsd dnsperf knot-dnsutils (and release builds of role-dns'
# examples serve_zones and dns_load).
set -euo pipefail
ZONES=${ZONES:-${1:-10000}}
SECONDS_PER_RUN=${SECONDS_PER_RUN:-${2:-10}}
CHANGES=${CHANGES:-${3:-200}}
WORKERS=${WORKERS:-1}
RUNS=${RUNS:-1}
LOADGEN=${LOADGEN:-dnsperf dns_load}
PIN=${PIN:-1}
SERVER_CPU=${SERVER_CPU:-0}
CLIENT_CPU=${CLIENT_CPU:-1}
if [ "$(id -u)" = 0 ]; then NICE=${NICE:--20}; else NICE=${NICE:-0}; fi
# With autogroup scheduling (kernel.sched_autogroup_enabled=1) niceness only counts
# within a session, and each session shares the CPUs equally with the others: the
# bench runs in a session of its own whose autogroup gets the same niceness.
if [ "$NICE" != 0 ] && [ -w /proc/self/autogroup ] && [ -z "${BENCH_DNS_SESSION:-}" ]; then
  BENCH_DNS_SESSION=1 exec setsid -w bash "$0" "$@"
fi
if [ -n "${BENCH_DNS_SESSION:-}" ]; then
  echo "$NICE" > /proc/self/autogroup
fi
if [ "$PIN" = 1 ]; then
  ON_SERVER=(nice -n "$NICE" taskset -c "$SERVER_CPU")
  ON_CLIENT=(nice -n "$NICE" taskset -c "$CLIENT_CPU")
else
  ON_SERVER=(nice -n "$NICE")
  ON_CLIENT=(nice -n "$NICE")
fi
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
for tool in dnsperf knotd nsd kdig taskset; do
  command -v "$tool" >/dev/null || { echo "missing $tool (apt-get install knot nsd dnsperf knot-dnsutils)" >&2; exit 1; }
done

cd "$ROOT"
if [ -z "${BIN:-}" ]; then
  cargo build --release -p role-dns --example serve_zones --example dns_load >&2
  BIN="${CARGO_TARGET_DIR:-$ROOT/target}/release/examples/serve_zones"
fi
LOAD_BIN=${LOAD_BIN:-$(dirname "$BIN")/dns_load}
case " $LOADGEN " in *" dns_load "*) [ -x "$LOAD_BIN" ] || { echo "missing $LOAD_BIN (cargo build --release -p role-dns --example dns_load, or LOAD_BIN=)" >&2; exit 1; } ;; esac
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

cpu_busy() { # cpu -> "busy total irq+softirq" jiffies of that CPU from /proc/stat
  awk -v c="cpu$1" '$1 == c {print $2 + $3 + $4 + $7 + $8 + $9, $2 + $3 + $4 + $5 + $6 + $7 + $8 + $9, $7 + $8}' /proc/stat
}
share_of() { # "busy total irq" before, after, field -> % of that CPU's time
  awk -v b="$1" -v a="$2" -v f="$3" 'BEGIN {split(b, x, " "); split(a, y, " "); print (y[2] - x[2]) ? (y[f] - x[f]) * 100 / (y[2] - x[2]) : 0}'
}

run_perf() { # ip name pid generator
  local before after sb cb sa ca load
  local gen=(dnsperf -s "$1" -p "$PORT" -d "$WORK/queries.txt" -l "$SECONDS_PER_RUN" -c 8 -T 1 -q 200)
  [ "$4" = dns_load ] && gen=("$LOAD_BIN" "$1" "$PORT" "$WORK/queries.txt" "$SECONDS_PER_RUN" 256)
  load=$(cut -d' ' -f1-3 /proc/loadavg)
  before=$(cpu_ticks "$3")
  sb=$(cpu_busy "$SERVER_CPU"); cb=$(cpu_busy "$CLIENT_CPU")
  /usr/bin/time -f '%e %U %S' -o "$WORK/$2.time" "${ON_CLIENT[@]}" "${gen[@]}" > "$WORK/$2.perf" 2>&1
  sa=$(cpu_busy "$SERVER_CPU"); ca=$(cpu_busy "$CLIENT_CPU")
  after=$(cpu_ticks "$3")
  local qps lat lost answered cpu wall share client score ccore
  qps=$(awk '/Queries per second/ {print $4}' "$WORK/$2.perf")
  lat=$(awk '/Average Latency/ {print $4}' "$WORK/$2.perf")
  lost=$(awk '/Queries lost/ {print $3}' "$WORK/$2.perf")
  answered=$(awk '/Queries completed/ {print $3}' "$WORK/$2.perf")
  # CPU time of the server (all its threads and processes) per answered query, in
  # microseconds: steadier than QPS on a loaded machine.
  cpu=$(echo "($after - $before) * 1000000 / $HZ / $answered" | bc -l)
  # Shares over the run, in % of one core: the server (all its processes), dnsperf
  # (user+sys from time(1)), and how busy each of the two CPUs was with anything.
  wall=$(awk '{print $1}' "$WORK/$2.time")
  share=$(echo "($after - $before) * 100 / $HZ / $wall" | bc -l)
  client=$(awk -v w="$wall" '{print ($2 + $3) * 100 / w}' "$WORK/$2.time")
  score=$(share_of "$sb" "$sa" 1); ccore=$(share_of "$cb" "$ca" 1)
  # Interrupt work (the kernel's loopback delivery runs as softirq on the sending
  # CPU) is not charged to any process: shown apart.
  sirq=$(share_of "$sb" "$sa" 3); cirq=$(share_of "$cb" "$ca" 3)
  echo "$2 $qps $lat $lost $cpu $share $sirq $score $client $cirq $ccore $load"
  grep -E 'Response codes' "$WORK/$2.perf" | sed "s/^/  $2 $4 /" >&2
}

# `exec` so that each PID is the server's own (taskset execs it too).
(DNS_UDP_WORKERS=$WORKERS exec "${ON_SERVER[@]}" "$BIN" serve "$OURS" "$PORT" "$ZONES" > "$WORK/ours.log" 2>&1) & PIDS+=($!); OURS_PID=$!
(exec "${ON_SERVER[@]}" knotd -c "$WORK/knot/knot.conf" > "$WORK/knot.log" 2>&1) & PIDS+=($!); KNOT_PID=$!
(exec "${ON_SERVER[@]}" nsd -d -c "$WORK/nsd/nsd.conf" > "$WORK/nsd.log" 2>&1) & PIDS+=($!); NSD_PID=$!
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
for ((run = 1; run <= RUNS; run++)); do
  for gen in $LOADGEN; do
    for target in "ours $OURS $OURS_PID" "knot $KNOT $KNOT_PID" "nsd $NSD $NSD_PID"; do
      set -- $target
      RESULTS+=("$run $gen $(run_perf "$2" "$1" "$3" "$gen")")
    done
  done
done

echo
if [ "$PIN" = 1 ]; then
  echo "servers pinned to CPU $SERVER_CPU, load generator to CPU $CLIENT_CPU (taskset)"
fi
echo "servers and load generator at niceness $NICE"
echo "$ZONES zones, ${SECONDS_PER_RUN} s per run, same query file (60% www A, 20% MX, 20% NXDOMAIN);"
echo "dnsperf: 8 clients, 1 thread, 200 outstanding; dns_load: 1 socket, 256 outstanding, sendmmsg/recvmmsg"
echo "server%: the server's CPU use (all its processes, % of one core); irq%: interrupt work on its CPU"
echo "(softirq: loopback delivery of what that CPU sent); core%: how busy its CPU was (with anything);"
echo "client%, irq%, core%: the same for the load generator's CPU; load: 1/5/15-min load average"
printf '%-3s %-8s %-6s %9s %8s %6s %8s %8s %5s %6s %8s %5s %6s  %s\n' run client server QPS "lat ms" lost "CPU us/q" server% irq% core% client% irq% core% load
for r in "${RESULTS[@]}"; do
  set -- $r
  printf '%-3s %-8s %-6s %9.0f %8.3f %6s %8.2f %8.0f %5.0f %6.0f %8.0f %5.0f %6.0f  %s %s %s\n' "$1" "$2" "$3" "$4" "$(echo "$5 * 1000" | bc -l)" "$6" "$7" "$8" "$9" "${10}" "${11}" "${12}" "${13}" "${14}" "${15}" "${16}"
done
for ((run = 1; run <= RUNS; run++)); do
  for gen in $LOADGEN; do
    field() { # server column -> value in this run
      printf '%s\n' "${RESULTS[@]}" | awk -v r="$run" -v g="$gen" -v s="$1" -v c="$2" '$1 == r && $2 == g && $3 == s {print $c}'
    }
    printf 'run %d %-8s QPS ours/nsd %.2fx  ours/knot %.2fx   CPU per query nsd/ours %.2fx  knot/ours %.2fx (higher: ours cheaper)\n' "$run" "$gen" \
      "$(echo "$(field ours 4) / $(field nsd 4)" | bc -l)" "$(echo "$(field ours 4) / $(field knot 4)" | bc -l)" \
      "$(echo "$(field nsd 7) / $(field ours 7)" | bc -l)" "$(echo "$(field knot 7) / $(field ours 7)" | bc -l)"
  done
done

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
