//! Shared helpers of the transfer and interop tests: engines on 127.0.4.x, zone
//! content builders, `dig`, polling, and child daemons killed on drop.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::path::Path;
use std::process::{Child, Command};
use std::time::{Duration, Instant};

use agent::supervisor::EngineContext;
use proto::agent_v1::{DnsConfig, TsigKey, ZoneAssignment, ZoneContent, ZoneRecord};
use role_dns::DnsEngine;

/// Port every test engine and daemon listens on (each on its own address).
pub const PORT: u16 = 10054;
/// A TSIG secret (base64) for tests.
pub const SECRET: &str = "aG9zdHBsYW5lLXRlc3QtdHNpZy1rZXktMzItYnl0ZXMh";

pub fn ep(ip: &str) -> String {
    format!("{ip}:{PORT}")
}

pub fn key() -> TsigKey {
    TsigKey {
        name: "xfr.test.".into(),
        algorithm: "hmac-sha256".into(),
        secret: SECRET.into(),
        previous: None,
    }
}

/// An engine on `ip`:PORT with its state in `dir`.
pub async fn engine(ip: &str, dir: &Path) -> DnsEngine {
    let ctx = EngineContext {
        server: format!("ns-{ip}"),
        role: "dns".into(),
        bind: ip.parse().expect("ip"),
        state_dir: dir.to_path_buf(),
        identity: None,
        options: BTreeMap::from([("dns_port".to_string(), PORT.to_string())]),
        controllers: Vec::new(),
    };
    // A previous engine on this address may still be closing its sockets.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        match DnsEngine::start(&ctx) {
            Ok(e) => return e,
            Err(e) if Instant::now() < deadline => {
                let _ = e;
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Err(e) => panic!("engine on {ip}: {e}"),
        }
    }
}

fn rec(name: &str, ttl: u32, rtype: &str, data: &str) -> ZoneRecord {
    ZoneRecord {
        name: name.into(),
        ttl,
        rtype: rtype.into(),
        data: data.into(),
    }
}

/// Zone `origin` at `serial` whose `www` points at `web`, plus `extra` hosts.
/// SOA timers are short: refresh 2 s, retry 1 s, expire 3600 s.
pub fn content(origin: &str, serial: u32, web: &str, extra: usize) -> ZoneContent {
    let mut records = vec![
        rec(
            origin,
            3600,
            "SOA",
            &format!("ns1.{origin}. hostmaster.{origin}. {serial} 2 1 3600 60"),
        ),
        rec(origin, 3600, "NS", &format!("ns1.{origin}.")),
        rec(origin, 3600, "NS", &format!("ns2.{origin}.")),
        rec(&format!("ns1.{origin}"), 3600, "A", "192.0.2.53"),
        rec(&format!("ns2.{origin}"), 3600, "A", "192.0.2.54"),
        rec(&format!("www.{origin}"), 60, "A", web),
        rec(origin, 300, "TXT", "\"v=spf1 mx -all\""),
        rec(origin, 300, "MX", &format!("10 mail.{origin}.")),
        rec(&format!("mail.{origin}"), 300, "A", "192.0.2.25"),
    ];
    for i in 0..extra {
        records.push(rec(
            &format!("h{i}.{origin}"),
            300,
            "A",
            &format!("10.0.{}.{}", i / 250, i % 250),
        ));
    }
    ZoneContent {
        origin: origin.into(),
        serial,
        records,
    }
}

pub fn primary(content: ZoneContent, notify: Vec<String>, tsig: Option<TsigKey>) -> ZoneAssignment {
    ZoneAssignment {
        domain: content.origin.clone(),
        primary: true,
        primary_addresses: vec![],
        secondaries: vec![],
        zone: Some(std::sync::Arc::new(content)),
        primary_endpoints: vec![],
        notify,
        tsig,
    }
}

pub fn secondary(origin: &str, primary: String, tsig: Option<TsigKey>) -> ZoneAssignment {
    ZoneAssignment {
        domain: origin.into(),
        primary: false,
        primary_addresses: vec![],
        secondaries: vec![],
        zone: None,
        primary_endpoints: vec![primary],
        notify: vec![],
        tsig,
    }
}

pub fn cfg(zones: Vec<ZoneAssignment>) -> DnsConfig {
    DnsConfig { zones }
}

/// `dig +short` output (trimmed) for name/type at ip:PORT; extra args appended.
pub fn dig(ip: &str, name: &str, rtype: &str, extra: &[&str]) -> String {
    dig_at(ip, PORT, name, rtype, extra)
}

/// `dig` against ip:port.
pub fn dig_at(ip: &str, port: u16, name: &str, rtype: &str, extra: &[&str]) -> String {
    let out = Command::new("dig")
        .args([
            &format!("@{ip}"),
            "-p",
            &port.to_string(),
            name,
            rtype,
            "+norec",
            "+time=1",
            "+tries=1",
        ])
        .args(extra)
        .output()
        .expect("dig must be installed (bind9-dnsutils)");
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

pub fn short(ip: &str, name: &str, rtype: &str) -> String {
    dig(ip, name, rtype, &["+short"])
}

/// The status word of a full dig answer (NOERROR, SERVFAIL, …).
pub fn status(ip: &str, name: &str, rtype: &str) -> String {
    let out = dig(ip, name, rtype, &[]);
    out.split("status: ")
        .nth(1)
        .and_then(|s| s.split(',').next())
        .unwrap_or("NO ANSWER")
        .to_string()
}

/// Polls `f` until it returns true (panics after 30 s with `what`).
pub async fn wait_for(what: &str, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !f() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// A child daemon killed (and reaped) on drop.
pub struct Daemon {
    pub name: &'static str,
    pub child: Child,
    /// Its stderr log, printed when the test fails.
    pub log: std::path::PathBuf,
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if std::thread::panicking() {
            let log = std::fs::read_to_string(&self.log).unwrap_or_default();
            let tail: Vec<&str> = log.lines().rev().take(40).collect();
            eprintln!("--- {} log (last lines) ---", self.name);
            for l in tail.iter().rev() {
                eprintln!("{l}");
            }
        }
    }
}

pub fn addr(ip: &str) -> SocketAddr {
    SocketAddr::new(ip.parse::<IpAddr>().expect("ip"), PORT)
}

/// Requires a tool; fails loudly when missing.
pub fn require(tool: &str, package: &str) {
    let found = Command::new("sh")
        .args(["-c", &format!("command -v {tool}")])
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false);
    assert!(found, "{tool} is required: apt-get install {package}");
}
