//! Batched UDP load generator for `bench/dns/run.sh` (a benchmark tool, not a test).
//!
//!     dns_load <server-ip> <port> <queries-file> <seconds> [outstanding=256]
//!
//! Sends the questions of a dnsperf query file (`name TYPE` per line, cycled) to one
//! server, keeping `outstanding` queries in flight, and prints what it measured in
//! dnsperf's words (queries sent/completed/lost, response codes, average latency,
//! queries per second), so `run.sh` reads either tool's output the same way.
//!
//! Why not only dnsperf: on this 2-core machine, with the server pinned to one core
//! and dnsperf to the other, dnsperf spends about as much CPU per query as the
//! servers do (one `sendto` and one `recvfrom` per query), so it runs out of CPU
//! first and every server gets the same QPS. This tool sends and receives up to
//! [`BATCH`] datagrams per system call (`sendmmsg`/`recvmmsg`), so its core keeps up
//! and the server's core is the limit. Queries are plain (no EDNS, RD clear), from
//! one socket.

use std::io::{IoSlice, IoSliceMut};
use std::net::{IpAddr, SocketAddr, UdpSocket};
use std::os::fd::AsRawFd;
use std::str::FromStr;
use std::time::{Duration, Instant};

use hickory_proto::op::{Message, Query};
use hickory_proto::rr::{Name, RecordType};
use nix::errno::Errno;
use nix::sys::socket::{
    recvmmsg, sendmmsg, ControlMessage, MsgFlags, MultiHeaders, SockaddrStorage,
};

/// Most datagrams sent or received in one system call.
const BATCH: usize = 64;
/// Queries unanswered for this long (with nothing else arriving) count as lost.
const LOST_AFTER: Duration = Duration::from_millis(200);

/// The questions of a dnsperf query file, each encoded as a query with id 0.
fn load_queries(path: &str) -> Result<Vec<Vec<u8>>, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{path}: {e}"))?;
    let mut out = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let mut words = line.split_whitespace();
        let (Some(name), Some(rtype)) = (words.next(), words.next()) else {
            continue;
        };
        let name = Name::from_ascii(name).map_err(|e| format!("line {}: {e}", n + 1))?;
        let rtype = RecordType::from_str(rtype).map_err(|e| format!("line {}: {e}", n + 1))?;
        let mut m = Message::query();
        m.metadata.recursion_desired = false;
        m.add_query(Query::query(name, rtype));
        out.push(m.to_vec().map_err(|e| format!("line {}: {e}", n + 1))?);
    }
    if out.is_empty() {
        return Err(format!("{path}: no queries"));
    }
    Ok(out)
}

/// What one run measured.
#[derive(Default)]
struct Tally {
    sent: u64,
    completed: u64,
    lost: u64,
    latency: Duration,
    rcodes: [u64; 16],
}

fn run(
    server: SocketAddr,
    queries: &[Vec<u8>],
    seconds: f64,
    window: usize,
) -> Result<(Tally, Duration), String> {
    let local = match server.ip() {
        IpAddr::V4(_) => "127.0.0.1:0",
        IpAddr::V6(_) => "[::1]:0",
    };
    let sock = UdpSocket::bind(local).map_err(|e| e.to_string())?;
    sock.connect(server).map_err(|e| e.to_string())?;
    sock.set_read_timeout(Some(Duration::from_millis(20)))
        .map_err(|e| e.to_string())?;
    let fd = sock.as_raw_fd();
    let mut sent_at: Vec<Option<Instant>> = vec![None; 65_536];
    let mut t = Tally::default();
    let mut in_flight = 0usize;
    let mut next_id: u16 = 0;
    let mut next_query = 0usize;
    let mut out: Vec<Vec<u8>> = Vec::with_capacity(BATCH);
    let mut bufs: Vec<Vec<u8>> = (0..BATCH).map(|_| vec![0u8; 4096]).collect();
    let mut last_answer = Instant::now();
    let start = Instant::now();
    let end = start + Duration::from_secs_f64(seconds);
    loop {
        let now = Instant::now();
        if now >= end {
            break;
        }
        // Fill the window.
        while in_flight < window {
            out.clear();
            while out.len() < BATCH && in_flight + out.len() < window {
                let mut q = queries[next_query % queries.len()].clone();
                next_query += 1;
                q[0..2].copy_from_slice(&next_id.to_be_bytes());
                sent_at[usize::from(next_id)] = Some(now);
                next_id = next_id.wrapping_add(1);
                out.push(q);
            }
            let mut headers = MultiHeaders::<SockaddrStorage>::preallocate(out.len(), None);
            let slices: Vec<[IoSlice<'_>; 1]> = out.iter().map(|q| [IoSlice::new(q)]).collect();
            let addrs: Vec<Option<SockaddrStorage>> = vec![None; out.len()];
            let none: [ControlMessage<'_>; 0] = [];
            let n = match sendmmsg(
                fd,
                &mut headers,
                slices.iter(),
                &addrs,
                none,
                MsgFlags::empty(),
            ) {
                Ok(done) => done.count(),
                Err(Errno::EAGAIN | Errno::ENOBUFS | Errno::ECONNREFUSED) => 0,
                Err(e) => return Err(format!("sendmmsg: {e}")),
            };
            // Ids of queries the kernel did not take are freed again.
            for q in &out[n..] {
                sent_at[usize::from(u16::from_be_bytes([q[0], q[1]]))] = None;
            }
            t.sent += n as u64;
            in_flight += n;
            if n < out.len() {
                break;
            }
        }
        // Take every answer waiting (blocking for the first, up to the timeout).
        let lens: Vec<usize> = {
            let mut headers = MultiHeaders::<SockaddrStorage>::preallocate(BATCH, None);
            let mut slices: Vec<[IoSliceMut<'_>; 1]> = bufs
                .iter_mut()
                .map(|b| [IoSliceMut::new(&mut b[..])])
                .collect();
            let got = recvmmsg(
                fd,
                &mut headers,
                slices.iter_mut(),
                MsgFlags::MSG_WAITFORONE,
                None,
            );
            match got {
                Ok(got) => got.map(|m| m.bytes).collect(),
                Err(Errno::EAGAIN | Errno::EINTR | Errno::ECONNREFUSED) => Vec::new(),
                Err(e) => return Err(format!("recvmmsg: {e}")),
            }
        };
        let now = Instant::now();
        for (buf, len) in bufs.iter().zip(&lens) {
            if *len < 12 {
                continue;
            }
            let id = usize::from(u16::from_be_bytes([buf[0], buf[1]]));
            if let Some(at) = sent_at[id].take() {
                t.completed += 1;
                t.latency += now - at;
                t.rcodes[usize::from(buf[3] & 0x0f)] += 1;
                in_flight -= 1;
                last_answer = now;
            }
        }
        if lens.is_empty() && in_flight > 0 && now - last_answer > LOST_AFTER {
            // Nothing came back for a while: what is in flight is lost.
            t.lost += in_flight as u64;
            in_flight = 0;
            sent_at.iter_mut().for_each(|s| *s = None);
            last_answer = now;
        }
    }
    let elapsed = start.elapsed();
    // Answers still on their way at the deadline are not counted as lost; they are
    // neither completed (as dnsperf would wait for them, this tool does not).
    Ok((t, elapsed))
}

fn rcode_name(code: usize) -> String {
    match code {
        0 => "NOERROR".into(),
        1 => "FORMERR".into(),
        2 => "SERVFAIL".into(),
        3 => "NXDOMAIN".into(),
        4 => "NOTIMP".into(),
        5 => "REFUSED".into(),
        other => format!("RCODE{other}"),
    }
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let parsed = (|| -> Result<(SocketAddr, String, f64, usize), String> {
        let ip: IpAddr = args
            .get(1)
            .ok_or("missing server ip")?
            .parse()
            .map_err(|e| format!("server ip: {e}"))?;
        let port: u16 = args
            .get(2)
            .ok_or("missing port")?
            .parse()
            .map_err(|e| format!("port: {e}"))?;
        let file = args.get(3).ok_or("missing queries file")?.clone();
        let seconds: f64 = args
            .get(4)
            .ok_or("missing seconds")?
            .parse()
            .map_err(|e| format!("seconds: {e}"))?;
        let window: usize = match args.get(5) {
            Some(w) => w.parse().map_err(|e| format!("outstanding: {e}"))?,
            None => 256,
        };
        if window == 0 || window > 16_384 {
            return Err("outstanding must be 1..=16384".into());
        }
        Ok((SocketAddr::new(ip, port), file, seconds, window))
    })();
    let result = parsed.and_then(|(server, file, seconds, window)| {
        let queries = load_queries(&file)?;
        let (t, elapsed) = run(server, &queries, seconds, window)?;
        let pct = |n: u64, of: u64| {
            if of == 0 {
                0.0
            } else {
                n as f64 * 100.0 / of as f64
            }
        };
        println!("dns_load: {server}, {window} outstanding, batches of {BATCH}");
        println!("  Queries sent:         {}", t.sent);
        println!(
            "  Queries completed:    {} ({:.2}%)",
            t.completed,
            pct(t.completed, t.sent)
        );
        println!(
            "  Queries lost:         {} ({:.2}%)",
            t.lost,
            pct(t.lost, t.sent)
        );
        let codes: Vec<String> = t
            .rcodes
            .iter()
            .enumerate()
            .filter(|(_, n)| **n > 0)
            .map(|(c, n)| format!("{} {} ({:.2}%)", rcode_name(c), n, pct(*n, t.completed)))
            .collect();
        println!("  Response codes:       {}", codes.join(", "));
        println!("  Run time (s):         {:.6}", elapsed.as_secs_f64());
        let avg = if t.completed == 0 {
            0.0
        } else {
            t.latency.as_secs_f64() / t.completed as f64
        };
        println!("  Average Latency (s):  {avg:.6}");
        println!(
            "  Queries per second:   {:.6}",
            t.completed as f64 / elapsed.as_secs_f64()
        );
        Ok(())
    });
    if let Err(e) = result {
        eprintln!("dns_load: {e}");
        eprintln!("usage: dns_load <server-ip> <port> <queries-file> <seconds> [outstanding=256]");
        std::process::exit(1);
    }
}
