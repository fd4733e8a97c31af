//! Memory of a DNS primary's agent as `hostplane up` fills it (issue 13 point 5), without
//! the platform: the agent's delta path ([`agent::delta::ItemState`]) and the DNS
//! engine inside the agent's [`Supervisor`], fed the deltas a controller sends while
//! `count` domains are imported.
//!
//! - `agent_mem gen <dir> <count>`: writes the controller's side: `delta-<n>.json`
//!   (each a [`ConfigDelta`] as on the wire) and `blobs/<hash>`. Zones arrive in
//!   batches of 666 (one import batch of 2,000 lines: customer, domain, site,
//!   mailbox), each first with its web records (serial 1), then, one revision later,
//!   with its DKIM keys (serial 2, as the key task publishes them), so a primary
//!   holds one earlier version of every zone, as under `up`.
//! - `agent_mem run <dir>`: replays them through `ItemState` (parse, apply, fetch
//!   missing blobs from `blobs/`, build), writes `desired.json` like the agent, and
//!   applies each build to the engine; then waits for the notifies to settle and
//!   prints the RSS, and the RSS once the agent's copy of the config is dropped (the
//!   engine alone). With `NO_ENGINE=1` nothing is applied: the agent's side alone.
//!
//! Uses mimalloc like the `hostplane` binary, so RSS compares with the agent's.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use agent::delta::ItemState;
use agent::supervisor::{EngineRegistry, Supervisor};
use proto::agent_delta::{split, ConfigDelta, Item};
use proto::agent_v1::{
    DesiredConfig, DnsConfig, RoleConfig, ServerIdentity, TsigKey, ZoneAssignment, ZoneContent,
    ZoneRecord, CONFIG_FORMAT,
};

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Zones per import batch (2,000 NDJSON lines: a domain, its site and its mailbox,
/// plus a customer every 50 domains).
const BATCH: usize = 666;

fn rec(name: &str, ttl: u32, rtype: &str, data: &str) -> ZoneRecord {
    ZoneRecord {
        name: name.into(),
        ttl,
        rtype: rtype.into(),
        data: data.into(),
    }
}

/// Base64-ish text of `n` characters, different per zone.
fn key_text(i: usize, n: usize) -> String {
    let c = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    (0..n)
        .map(|k| char::from(c[(k * 31 + i * 7) % c.len()]))
        .collect()
}

/// Zone `d<i>.scale.example` as the controller builds it under `up`: SOA, NS with the
/// cluster's servers, the site at `@` and `www`, MX to both mail servers, `mail`,
/// `ftp`, SPF, DMARC and (with `dkim`) the Ed25519 and RSA DKIM keys.
fn content(i: usize, serial: u32, dkim: bool) -> ZoneContent {
    let o = format!("d{i}.scale.example");
    let w = format!("www.{o}");
    let mut records = vec![
        rec(
            &o,
            3600,
            "SOA",
            &format!("ns1.hosting.example. hostmaster.{o}. {serial} 3600 600 1209600 300"),
        ),
        rec(&o, 3600, "NS", "ns1.hosting.example."),
        rec(&o, 3600, "NS", "ns2.hosting.example."),
        rec(&o, 300, "A", "127.0.3.1"),
        rec(&o, 300, "MX", "10 mx1.hosting.example."),
        rec(&o, 300, "MX", "20 mx2.hosting.example."),
        rec(&o, 300, "TXT", "\"v=spf1 mx -all\""),
        rec(&format!("_dmarc.{o}"), 300, "TXT", "\"v=DMARC1; p=none\""),
        rec(&format!("ftp.{o}"), 300, "A", "127.0.3.8"),
        rec(&format!("mail.{o}"), 300, "A", "127.0.3.6"),
        rec(&w, 300, "A", "127.0.3.1"),
    ];
    if dkim {
        let rsa = key_text(i, 392);
        records.push(rec(
            &format!("hp1._domainkey.{o}"),
            300,
            "TXT",
            &format!("\"v=DKIM1; k=rsa; p={}\" \"{}\"", &rsa[..200], &rsa[200..]),
        ));
        records.push(rec(
            &format!("hp2._domainkey.{o}"),
            300,
            "TXT",
            &format!("\"v=DKIM1; k=ed25519; p={}=\"", key_text(i + 1, 43)),
        ));
    }
    records[1..].sort_by(|a, b| (&a.name, &a.rtype).cmp(&(&b.name, &b.rtype)));
    ZoneContent {
        origin: o,
        serial,
        records,
    }
}

fn assignment(c: ZoneContent) -> ZoneAssignment {
    ZoneAssignment {
        domain: c.origin.clone(),
        primary: true,
        primary_addresses: vec!["127.0.2.1".into()],
        secondaries: vec!["127.0.2.2".into()],
        zone: Some(Arc::new(c)),
        primary_endpoints: vec![],
        // Nobody listens there: notifies are retried and given up, as for a
        // secondary that is busy.
        notify: vec!["127.0.0.1:9".into()],
        tsig: Some(TsigKey {
            name: "xfr.dns-eu.hostplane.".into(),
            algorithm: "hmac-sha256".into(),
            secret: "c2VjcmV0LXNlY3JldC1zZWNyZXQtc2VjcmV0LXNlY3JldA==".into(),
            previous: None,
        }),
    }
}

fn server() -> ServerIdentity {
    ServerIdentity {
        name: "ns1".into(),
        role: "dns".into(),
        cluster: "dns-eu".into(),
        rank: 0,
        addresses: vec!["127.0.0.1".into()],
        hostname: "ns1.hosting.example".into(),
    }
}

fn config(revision: i64, zones: &BTreeMap<usize, (u32, bool)>) -> DesiredConfig {
    DesiredConfig {
        format: CONFIG_FORMAT,
        revision,
        server: server(),
        role: RoleConfig::Dns(DnsConfig {
            zones: zones
                .iter()
                .map(|(i, (serial, dkim))| assignment(content(*i, *serial, *dkim)))
                .collect(),
        }),
    }
}

fn gen(dir: &Path, count: usize) -> Result<(), String> {
    let blobs = dir.join("blobs");
    std::fs::create_dir_all(&blobs).map_err(|e| e.to_string())?;
    let mut zones = BTreeMap::new();
    // The agent starts from the empty config of revision 1.
    let mut prev = split(&config(1, &zones).role)
        .map_err(|e| e.to_string())?
        .items;
    let mut revision = 1;
    let mut n = 0;
    let mut start = 0;
    while start < count {
        let end = (start + BATCH).min(count);
        for step in [(1, false), (2, true)] {
            for i in start..end {
                zones.insert(i, step);
            }
            revision += 1;
            let s = split(&config(revision, &zones).role).map_err(|e| e.to_string())?;
            let upserts: Vec<Item> = s
                .items
                .values()
                .filter(|i| prev.get(&i.id).map(Item::hash) != Some(i.hash()))
                .cloned()
                .collect();
            for (h, b) in &s.blobs {
                let p = blobs.join(h);
                if !p.exists() {
                    std::fs::write(p, b).map_err(|e| e.to_string())?;
                }
            }
            let d = ConfigDelta {
                format: CONFIG_FORMAT,
                from: revision - 1,
                to: revision,
                server: server(),
                upserts,
                removals: prev
                    .keys()
                    .filter(|id| !s.items.contains_key(*id))
                    .cloned()
                    .collect(),
                digest: s.digest(),
            };
            let bytes = serde_json::to_vec(&d).map_err(|e| e.to_string())?;
            std::fs::write(dir.join(format!("delta-{n:04}.json")), bytes)
                .map_err(|e| e.to_string())?;
            n += 1;
            prev = s.items;
        }
        start = end;
    }
    println!("{n} deltas for {count} zones in {}", dir.display());
    Ok(())
}

/// The process's `VmRSS` and `VmHWM` in MiB.
fn rss() -> (f64, f64) {
    let s = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let get = |k: &str| {
        s.lines()
            .find_map(|l| l.strip_prefix(k))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
            .map_or(0.0, |kb| kb / 1024.0)
    };
    (get("VmRSS:"), get("VmHWM:"))
}

async fn run(dir: &Path) -> Result<(), String> {
    let state = tempfile::tempdir().map_err(|e| e.to_string())?;
    let mut registry = EngineRegistry::new();
    registry.register("dns", role_dns::start_engine);
    let mut sup = Supervisor::new(
        registry,
        "ns1".into(),
        "127.0.0.1".parse().map_err(|_| "ip")?,
        state.path().to_path_buf(),
    )
    .with_engine_env(
        None,
        BTreeMap::from([("dns_port".to_string(), "0".to_string())]),
        Vec::new(),
    );
    let first = Arc::new(DesiredConfig {
        format: CONFIG_FORMAT,
        revision: 1,
        server: server(),
        role: RoleConfig::Dns(DnsConfig::default()),
    });
    sup.apply(&first).await.map_err(|e| e.to_string())?;
    let mut items = ItemState::from_config(&first).ok_or("no items")?;
    let mut current = first;
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(|e| e.to_string())?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    files.sort();
    // `NO_ENGINE=1`: the agent's side alone.
    let engine = std::env::var_os("NO_ENGINE").is_none();
    let t0 = Instant::now();
    for f in &files {
        let bytes = std::fs::read(f).map_err(|e| e.to_string())?;
        let d: ConfigDelta = serde_json::from_slice(&bytes).map_err(|e| e.to_string())?;
        drop(bytes);
        for h in items.apply(d).map_err(|e| e.to_string())? {
            let b = std::fs::read(dir.join("blobs").join(&h)).map_err(|e| e.to_string())?;
            items.add_blob(h, b.into());
        }
        let cfg = items.build().map_err(|e| e.to_string())?;
        agent::cache::store(state.path(), &cfg).map_err(|e| e.to_string())?;
        if engine {
            sup.apply(&cfg).await.map_err(|e| e.to_string())?;
        }
        current = cfg;
    }
    let applied = t0.elapsed();
    let (now, peak) = rss();
    println!(
        "{} deltas applied in {:.1} s to revision {}: rss {now:.0} MiB, peak {peak:.0} MiB",
        files.len(),
        applied.as_secs_f64(),
        current.revision
    );
    tokio::time::sleep(Duration::from_secs(20)).await;
    let (settled, _) = rss();
    drop(items);
    drop(current);
    tokio::time::sleep(Duration::from_secs(5)).await;
    let (engine, _) = rss();
    println!(
        "settled {settled:.0} MiB; without the agent's items and document {engine:.0} MiB (the agent's copy ~{:.0} MiB)",
        settled - engine
    );
    sup.shutdown().await;
    Ok(())
}

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    let result = match (args.get(1).map(String::as_str), args.get(2), args.get(3)) {
        (Some("gen"), Some(dir), Some(n)) => match n.parse() {
            Ok(n) => gen(Path::new(dir), n),
            Err(_) => Err("count is not a number".into()),
        },
        (Some("run"), Some(dir), _) => run(Path::new(dir)).await,
        _ => Err("usage: agent_mem gen <dir> <count> | run <dir>".into()),
    };
    if let Err(e) = result {
        eprintln!("agent_mem: {e}");
        std::process::exit(1);
    }
}
