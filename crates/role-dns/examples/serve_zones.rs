//! Benchmark helper for `bench/dns/run.sh`.
//!
//! - `serve_zones gen <dir> <count>`: writes `<dir>/zones/z<i>.bench.zone` and
//!   `cmp.bench.zone` (master files for NSD and Knot) and `<dir>/queries.txt`
//!   (dnsperf input), from the same zone content our engine serves.
//! - `serve_zones serve <ip> <port> <count>`: runs our engine (inside the agent's
//!   supervisor, primary zones) with those zones until killed.
//! - `serve_zones propagate <primary-ip> <secondary-ip> <port> <count> <changes>`: our
//!   primary and our secondary in one process; measures change → answered by the
//!   secondary for `changes` changes and prints p50/p99/max.
//! - `serve_zones mem <count> <changes>`: RSS of the engine inside the agent's
//!   supervisor with `count` zones, and the time of applying configs where one zone
//!   changed.
//!
//! `serve` and `mem` run the engine as deployed: through the agent's `Supervisor`, from
//! a config parsed from its JSON document, logs on (`RUST_LOG`, default `info`).

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use agent::supervisor::EngineContext;
use agent::supervisor::{EngineRegistry, Supervisor};
use hickory_proto::op::{Message, Query};
use hickory_proto::rr::{Name, RData, RecordType};
use proto::agent_v1::{
    DesiredConfig, DnsConfig, RoleConfig, ServerIdentity, ZoneAssignment, ZoneContent, ZoneRecord,
};
use role_dns::plan::zone_data;
use role_dns::{DnsEngine, Zone};

fn rec(name: &str, ttl: u32, rtype: &str, data: &str) -> ZoneRecord {
    ZoneRecord {
        name: name.into(),
        ttl,
        rtype: rtype.into(),
        data: data.into(),
    }
}

fn web_ip(i: usize, serial: u32) -> String {
    format!("10.{}.{}.{}", (i / 250) % 250, i % 250, serial % 250)
}

/// A DKIM public key TXT of the size the controller publishes (RSA 2048, two strings).
fn dkim_txt(i: usize) -> String {
    let key: String = (0..392)
        .map(|k| {
            let c = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
            char::from(c[(k * 31 + i * 7) % c.len()])
        })
        .collect();
    format!("\"v=DKIM1; k=rsa; p={}\" \"{}\"", &key[..200], &key[200..])
}

/// Zone `z<i>.bench` as the controller builds a hosted domain: SOA, two NS outside
/// the zone, apex and www on two web servers, two MX with the mail host, ftp, SPF,
/// DMARC and an RSA DKIM key (about 2.5 KB of JSON, like the 28 MB / 10,000-zone
/// configs measured under `hostplane up`).
fn content(i: usize, serial: u32) -> ZoneContent {
    let o = format!("z{i}.bench");
    let web = web_ip(i, serial);
    ZoneContent {
        origin: o.clone(),
        serial,
        records: vec![
            rec(
                &o,
                3600,
                "SOA",
                &format!(
                    "ns1.hosting.example. hostmaster.hosting.example. {serial} 3600 600 604800 300"
                ),
            ),
            rec(&o, 3600, "NS", "ns1.hosting.example."),
            rec(&o, 3600, "NS", "ns2.hosting.example."),
            rec(&o, 60, "A", &web),
            rec(&o, 60, "A", "192.0.2.81"),
            rec(&o, 60, "AAAA", "2001:db8::81"),
            rec(&format!("www.{o}"), 60, "A", &web),
            rec(&format!("www.{o}"), 60, "A", "192.0.2.81"),
            rec(&format!("www.{o}"), 60, "AAAA", "2001:db8::81"),
            rec(&o, 300, "MX", "10 mx1.hosting.example."),
            rec(&o, 300, "MX", "20 mx2.hosting.example."),
            rec(&format!("mail.{o}"), 300, "A", "192.0.2.25"),
            rec(&format!("ftp.{o}"), 300, "A", "192.0.2.21"),
            rec(&o, 300, "TXT", "\"v=spf1 mx -all\""),
            rec(
                &format!("_dmarc.{o}"),
                300,
                "TXT",
                "\"v=DMARC1; p=quarantine; adkim=s; aspf=s\"",
            ),
            rec(&format!("hp1._domainkey.{o}"), 300, "TXT", &dkim_txt(i)),
        ],
    }
}

/// Zone `cmp.bench`, served besides the `z<i>` zones by every server so that
/// `run.sh` can compare answers byte for byte: CNAME, wildcard, a delegation with
/// glue, MX with an in-zone target, TXT, NXDOMAIN and NODATA.
fn cmp_content() -> ZoneContent {
    let o = "cmp.bench";
    let n = |l: &str| format!("{l}.{o}");
    ZoneContent {
        origin: o.into(),
        serial: 1,
        records: vec![
            rec(
                o,
                3600,
                "SOA",
                "ns1.hosting.example. hostmaster.hosting.example. 1 3600 600 604800 300",
            ),
            rec(o, 3600, "NS", "ns1.hosting.example."),
            rec(o, 3600, "NS", "ns2.hosting.example."),
            rec(o, 60, "A", "192.0.2.80"),
            rec(o, 300, "MX", "10 mail.cmp.bench."),
            rec(o, 300, "TXT", "\"v=spf1 mx -all\""),
            rec(&n("mail"), 300, "A", "192.0.2.25"),
            rec(&n("mail"), 300, "AAAA", "2001:db8::25"),
            rec(&n("www"), 60, "CNAME", "cmp.bench."),
            rec(&n("alias"), 60, "CNAME", "www.cmp.bench."),
            rec(&n("*.wild"), 120, "A", "192.0.2.77"),
            rec(&n("*.wild"), 120, "TXT", "\"wild card\" \"two strings\""),
            rec(&n("sub"), 3600, "NS", "ns.sub.cmp.bench."),
            rec(&n("sub"), 3600, "NS", "ns.elsewhere.example."),
            rec(&n("ns.sub"), 3600, "A", "192.0.2.53"),
            rec(&n("_sip._tcp"), 300, "SRV", "10 5 5060 mail.cmp.bench."),
        ],
    }
}

fn primary(c: ZoneContent, notify: Vec<String>) -> ZoneAssignment {
    ZoneAssignment {
        domain: c.origin.clone(),
        primary: true,
        primary_addresses: vec![],
        secondaries: vec![],
        zone: Some(Arc::new(c)),
        primary_endpoints: vec![],
        notify,
        tsig: None,
    }
}

fn engine(ip: IpAddr, port: u16, dir: &std::path::Path) -> Result<DnsEngine, String> {
    let workers = std::env::var("DNS_UDP_WORKERS").unwrap_or_else(|_| "1".into());
    let ctx = EngineContext {
        server: format!("bench-{ip}"),
        role: "dns".into(),
        bind: ip,
        state_dir: dir.to_path_buf(),
        identity: None,
        options: BTreeMap::from([
            ("dns_port".to_string(), port.to_string()),
            ("dns_udp_workers".to_string(), workers),
        ]),
        controllers: Vec::new(),
    };
    DnsEngine::start(&ctx).map_err(|e| e.to_string())
}

fn gen(dir: &str, count: usize) -> Result<(), String> {
    let zones = std::path::Path::new(dir).join("zones");
    std::fs::create_dir_all(&zones).map_err(|e| e.to_string())?;
    for (name, c) in (0..count)
        .map(|i| (format!("z{i}.bench"), content(i, 1)))
        .chain([("cmp.bench".to_string(), cmp_content())])
    {
        let z = Zone::from_data(&zone_data(&c)).map_err(|e| e.to_string())?;
        let text = format!("$TTL 300\n{}", role_dns::persist::to_text(&z));
        std::fs::write(zones.join(format!("{name}.zone")), text).map_err(|e| e.to_string())?;
    }
    // Deterministic mix: 60% www A, 20% MX at the apex, 20% NXDOMAIN.
    let mut queries = String::new();
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    for _ in 0..200_000 {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let i = (x % count as u64) as usize;
        match (x >> 32) % 10 {
            0..=5 => queries.push_str(&format!("www.z{i}.bench A\n")),
            6 | 7 => queries.push_str(&format!("z{i}.bench MX\n")),
            _ => queries.push_str(&format!("nx{}.z{i}.bench A\n", x % 1000)),
        }
    }
    std::fs::write(std::path::Path::new(dir).join("queries.txt"), queries)
        .map_err(|e| e.to_string())
}

/// The process's resident set size in MiB (`VmRSS` of /proc/self/status).
fn rss_mib() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmRSS:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        })
        .map_or(0.0, |kb| kb / 1024.0)
}

/// The desired config of a DNS primary serving `count` zones, as the agent gets it:
/// the JSON document from the wire (returned too, for its size) parsed back.
fn desired(count: usize, serials: &[u32], revision: i64) -> Result<(DesiredConfig, usize), String> {
    let cfg = DesiredConfig {
        format: proto::agent_v1::CONFIG_FORMAT,
        revision,
        server: ServerIdentity {
            name: "dns-1".into(),
            role: "dns".into(),
            cluster: "dns".into(),
            rank: 0,
            addresses: vec!["127.0.5.1".into()],
            hostname: "ns1.hosting.example".into(),
        },
        role: RoleConfig::Dns(DnsConfig {
            zones: (0..count)
                .map(|i| primary(content(i, serials.get(i).copied().unwrap_or(1)), vec![]))
                .chain([primary(cmp_content(), vec![])])
                .collect(),
        }),
    };
    let text = serde_json::to_vec(&cfg).map_err(|e| e.to_string())?;
    // The agent receives bytes: the struct they were made from (the controller's,
    // in another process) must not count towards this process's memory.
    drop(cfg);
    let parsed = serde_json::from_slice(&text).map_err(|e| e.to_string())?;
    Ok((parsed, text.len()))
}

/// The DNS engine as the agent runs it: built and applied through the agent's
/// [`Supervisor`] (which keeps the applied config), logs on at `info`.
fn supervisor(ip: IpAddr, port: u16, dir: &std::path::Path) -> Supervisor {
    let workers = std::env::var("DNS_UDP_WORKERS").unwrap_or_else(|_| "1".into());
    let mut registry = EngineRegistry::new();
    registry.register("dns", role_dns::start_engine);
    Supervisor::new(registry, "dns-1".into(), ip, dir.to_path_buf()).with_engine_env(
        None,
        BTreeMap::from([
            ("dns_port".to_string(), port.to_string()),
            ("dns_udp_workers".to_string(), workers),
        ]),
        Vec::new(),
    )
}

fn init_logs() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .try_init();
}

async fn serve(ip: IpAddr, port: u16, count: usize) -> Result<(), String> {
    init_logs();
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    let mut sup = supervisor(ip, port, dir.path());
    // The agent keeps the config it received (one copy, shared with the supervisor
    // task; the supervisor itself keeps a digest).
    let (cfg, bytes) = desired(count, &[], 1)?;
    sup.apply(&cfg).await.map_err(|e| e.to_string())?;
    println!(
        "serving {count} zones on {ip}:{port} (config {:.1} MB, rss {:.0} MiB)",
        bytes as f64 / 1e6,
        rss_mib()
    );
    std::future::pending::<()>().await;
    drop(cfg);
    Ok(())
}

/// Memory and apply time of `count` zones inside the agent's supervisor: RSS after
/// the config is held, after the first apply, and after re-applying configs where
/// one zone changed (the incremental apply).
async fn mem(count: usize, changes: usize) -> Result<(), String> {
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    let base = rss_mib();
    let mut sup = supervisor("127.0.0.1".parse().map_err(|_| "ip")?, 0, dir.path());
    let mut serials = vec![1u32; count];
    let (cfg, bytes) = desired(count, &serials, 1)?;
    let held = rss_mib();
    let t0 = Instant::now();
    sup.apply(&cfg).await.map_err(|e| e.to_string())?;
    let first = t0.elapsed();
    let applied = rss_mib();
    let mut times = Vec::with_capacity(changes);
    let mut cfg = cfg;
    for c in 0..changes {
        let i = (c * 7919) % count;
        serials[i] += 1;
        let (next, _) = desired(count, &serials, 2 + c as i64)?;
        cfg = next;
        let t = Instant::now();
        sup.apply(&cfg).await.map_err(|e| e.to_string())?;
        times.push(t.elapsed());
    }
    times.sort();
    println!(
        "{count} zones: config {:.1} MB; rss start {base:.0} MiB, config held {held:.0} MiB, applied {applied:.0} MiB (engine +{:.0} MiB), after {changes} one-zone changes {:.0} MiB",
        bytes as f64 / 1e6,
        applied - held,
        rss_mib()
    );
    println!(
        "first apply {:.0} ms; one-zone change apply p50 {:.1} ms max {:.1} ms",
        first.as_secs_f64() * 1000.0,
        times
            .get(times.len() / 2)
            .map_or(0.0, |d| d.as_secs_f64() * 1000.0),
        times.last().map_or(0.0, |d| d.as_secs_f64() * 1000.0),
    );
    drop(cfg);
    Ok(())
}

/// Asks `server` for www.z<i>.bench A over UDP; returns the addresses answered.
async fn ask(sock: &tokio::net::UdpSocket, server: SocketAddr, i: usize) -> Option<Vec<String>> {
    let mut q = Message::query();
    q.add_query(Query::query(
        Name::from_ascii(format!("www.z{i}.bench.")).ok()?,
        RecordType::A,
    ));
    sock.send_to(&q.to_vec().ok()?, server).await.ok()?;
    let mut buf = [0u8; 1500];
    let (n, _) = tokio::time::timeout(Duration::from_millis(200), sock.recv_from(&mut buf))
        .await
        .ok()?
        .ok()?;
    let m = Message::from_vec(&buf[..n]).ok()?;
    Some(
        m.answers
            .iter()
            .filter_map(|r| match &r.data {
                RData::A(a) => Some(a.0.to_string()),
                _ => None,
            })
            .collect(),
    )
}

async fn propagate(
    p_ip: IpAddr,
    s_ip: IpAddr,
    port: u16,
    count: usize,
    changes: usize,
) -> Result<(), String> {
    let pdir = tempfile::tempdir().map_err(|e| e.to_string())?;
    let sdir = tempfile::tempdir().map_err(|e| e.to_string())?;
    let notify = vec![format!("{s_ip}:{port}")];
    let mut serials = vec![1u32; count];
    let config = |serials: &[u32]| DnsConfig {
        zones: serials
            .iter()
            .enumerate()
            .map(|(i, s)| primary(content(i, *s), notify.clone()))
            .collect(),
    };
    let p = engine(p_ip, port, pdir.path())?;
    p.apply_dns(&config(&serials))
        .await
        .map_err(|e| e.to_string())?;
    let s = engine(s_ip, port, sdir.path())?;
    let secondary = DnsConfig {
        zones: (0..count)
            .map(|i| ZoneAssignment {
                domain: format!("z{i}.bench"),
                primary: false,
                primary_addresses: vec![],
                secondaries: vec![],
                zone: None,
                primary_endpoints: vec![format!("{p_ip}:{port}")],
                notify: vec![],
                tsig: None,
            })
            .collect(),
    };
    let start = Instant::now();
    s.apply_dns(&secondary).await.map_err(|e| e.to_string())?;
    let sock = tokio::net::UdpSocket::bind(SocketAddr::new(s_ip, 0))
        .await
        .map_err(|e| e.to_string())?;
    let server = SocketAddr::new(s_ip, port);
    while s.stats().axfr.load(std::sync::atomic::Ordering::Relaxed) < count as u64 {
        if start.elapsed() > Duration::from_secs(600) {
            return Err("initial transfers did not finish".into());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    println!(
        "initial sync of {count} zones: {:.1} s",
        start.elapsed().as_secs_f64()
    );
    let mut lat = Vec::with_capacity(changes);
    let mut applies = Vec::with_capacity(changes);
    for c in 0..changes {
        let i = (c * 7919) % count;
        serials[i] += 1;
        let want = web_ip(i, serials[i]);
        let cfg = config(&serials);
        let t0 = Instant::now();
        p.apply_dns(&cfg).await.map_err(|e| e.to_string())?;
        applies.push(t0.elapsed());
        loop {
            if ask(&sock, server, i)
                .await
                .is_some_and(|got| got.contains(&want))
            {
                break;
            }
            if t0.elapsed() > Duration::from_secs(30) {
                return Err(format!("change {c} never reached the secondary"));
            }
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        lat.push(t0.elapsed());
    }
    lat.sort();
    applies.sort();
    println!(
        "primary apply of the whole {count}-zone config: p50 {:.1} ms",
        applies[applies.len() / 2].as_secs_f64() * 1000.0
    );
    let pct = |q: f64| lat[((lat.len() as f64 - 1.0) * q).round() as usize].as_secs_f64() * 1000.0;
    println!(
        "change -> secondary answer over {changes} changes ({count} zones): p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms; ixfr {} full {}",
        pct(0.5),
        pct(0.99),
        pct(1.0),
        s.stats().ixfr.load(std::sync::atomic::Ordering::Relaxed),
        s.stats().axfr.load(std::sync::atomic::Ordering::Relaxed),
    );
    Ok(())
}

fn arg<T: std::str::FromStr>(args: &[String], i: usize) -> Result<T, String> {
    args.get(i)
        .ok_or_else(|| format!("missing argument {i}"))?
        .parse()
        .map_err(|_| format!("bad argument {i}"))
}

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    let result = match args.get(1).map(String::as_str) {
        Some("gen") => gen(
            &args.get(2).cloned().unwrap_or_default(),
            arg(&args, 3).unwrap_or(10_000),
        ),
        Some("serve") => match (arg(&args, 2), arg(&args, 3), arg(&args, 4)) {
            (Ok(ip), Ok(port), Ok(n)) => serve(ip, port, n).await,
            _ => Err("usage: serve <ip> <port> <count>".into()),
        },
        Some("propagate") => match (
            arg(&args, 2),
            arg(&args, 3),
            arg(&args, 4),
            arg(&args, 5),
            arg(&args, 6),
        ) {
            (Ok(p), Ok(s), Ok(port), Ok(n), Ok(c)) => propagate(p, s, port, n, c).await,
            _ => {
                Err("usage: propagate <primary-ip> <secondary-ip> <port> <count> <changes>".into())
            }
        },
        Some("mem") => match (arg(&args, 2), arg(&args, 3)) {
            (Ok(n), Ok(c)) => mem(n, c).await,
            _ => Err("usage: mem <count> <changes>".into()),
        },
        _ => Err("usage: serve_zones gen|serve|propagate|mem …".into()),
    };
    if let Err(e) = result {
        eprintln!("serve_zones: {e}");
        std::process::exit(1);
    }
}
