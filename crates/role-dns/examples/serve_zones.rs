//! Benchmark helper for `bench/dns/run.sh`.
//!
//! - `serve_zones gen <dir> <count>`: writes `<dir>/zones/z<i>.bench.zone` (master
//!   files for NSD and Knot) and `<dir>/queries.txt` (dnsperf input), from the same
//!   zone content our engine serves.
//! - `serve_zones serve <ip> <port> <count>`: runs our engine (the agent adapter,
//!   primary zones) with those zones until killed.
//! - `serve_zones propagate <primary-ip> <secondary-ip> <port> <count> <changes>`: our
//!   primary and our secondary in one process; measures change → answered by the
//!   secondary for `changes` changes and prints p50/p99/max.

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use agent::supervisor::EngineContext;
use hickory_proto::op::{Message, Query};
use hickory_proto::rr::{Name, RData, RecordType};
use proto::agent_v1::{DnsConfig, ZoneAssignment, ZoneContent, ZoneRecord};
use role_dns::engine::zone_data;
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

fn content(i: usize, serial: u32) -> ZoneContent {
    let o = format!("z{i}.bench");
    ZoneContent {
        origin: o.clone(),
        serial,
        records: vec![
            rec(
                &o,
                3600,
                "SOA",
                &format!("ns1.{o}. hostmaster.{o}. {serial} 3600 600 604800 300"),
            ),
            rec(&o, 3600, "NS", &format!("ns1.{o}.")),
            rec(&o, 3600, "NS", &format!("ns2.{o}.")),
            rec(&format!("ns1.{o}"), 3600, "A", "192.0.2.53"),
            rec(&format!("ns2.{o}"), 3600, "A", "198.51.100.53"),
            rec(&o, 60, "A", &web_ip(i, serial)),
            rec(&format!("www.{o}"), 60, "A", &web_ip(i, serial)),
            rec(&o, 300, "MX", &format!("10 mail.{o}.")),
            rec(&format!("mail.{o}"), 300, "A", "192.0.2.25"),
            rec(&o, 300, "TXT", "\"v=spf1 mx -all\""),
        ],
    }
}

fn primary(c: ZoneContent, notify: Vec<String>) -> ZoneAssignment {
    ZoneAssignment {
        domain: c.origin.clone(),
        primary: true,
        primary_addresses: vec![],
        secondaries: vec![],
        zone: Some(c),
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
    for i in 0..count {
        let z = Zone::from_data(&zone_data(&content(i, 1))).map_err(|e| e.to_string())?;
        let text = format!("$TTL 300\n{}", role_dns::persist::to_text(&z));
        std::fs::write(zones.join(format!("z{i}.bench.zone")), text).map_err(|e| e.to_string())?;
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

async fn serve(ip: IpAddr, port: u16, count: usize) -> Result<(), String> {
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    let e = engine(ip, port, dir.path())?;
    let cfg = DnsConfig {
        zones: (0..count).map(|i| primary(content(i, 1), vec![])).collect(),
    };
    e.apply_dns(&cfg).await.map_err(|e| e.to_string())?;
    println!("serving {count} zones on {}", e.local_addr());
    std::future::pending::<()>().await;
    Ok(())
}

/// Asks `server` for www.z<i>.bench A over UDP; returns the address answered.
async fn ask(sock: &tokio::net::UdpSocket, server: SocketAddr, i: usize) -> Option<String> {
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
    m.answers.iter().find_map(|r| match &r.data {
        RData::A(a) => Some(a.0.to_string()),
        _ => None,
    })
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
            if ask(&sock, server, i).await.as_deref() == Some(want.as_str()) {
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
        _ => Err("usage: serve_zones gen|serve|propagate …".into()),
    };
    if let Err(e) = result {
        eprintln!("serve_zones: {e}");
        std::process::exit(1);
    }
}
