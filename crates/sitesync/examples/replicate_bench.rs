//! The replication core's own cost, in-process (no network, no capture debounce): one hub
//! and two replicas in a temporary directory on the real disk; each write on web-1 is
//! observed, pushed (outbox copy, upload, verdict, fsynced log, applied on the hub) and
//! pulled by web-2 (download, temp file + rename, fsync). Prints the write → visible on
//! web-2 latency (p50/p99/max) by size class. The floor under issue 14's 2 s target.
//!
//! Run: `cargo run --release -p sitesync --example replicate_bench [WRITES] [BIG]`
//! (defaults: 1,000 writes of 1 KiB–5 MiB, 10 of 100 MiB).

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::{Duration, Instant};

use sitesync::hub::{Hub, HubConfig};
use sitesync::inprocess::InProcess;
use sitesync::replica::{Look, Replica, ReplicaConfig};

const SITE: &str = "bench.example";

fn replica(dir: &Path, name: &str) -> anyhow::Result<Replica> {
    let root = dir.join(name).join("site");
    std::fs::create_dir_all(&root)?;
    Ok(Replica::open(ReplicaConfig {
        site: SITE.into(),
        server: name.into(),
        root,
        state: dir.join(name).join("state"),
        local: vec![],
        keep: vec![],
        owner: None,
        chunk_size: 4 << 20,
    })?)
}

fn pct(v: &mut [Duration], p: f64) -> Duration {
    v.sort();
    let i = ((v.len() as f64 - 1.0) * p).round() as usize;
    v.get(i).copied().unwrap_or_default()
}

fn report(name: &str, v: &mut [Duration]) {
    if v.is_empty() {
        return;
    }
    let (p50, p99) = (pct(v, 0.5), pct(v, 0.99));
    let max = v.iter().max().copied().unwrap_or_default();
    println!(
        "{name:>16}: n={:>5}  p50 {:>8.1} ms  p99 {:>8.1} ms  max {:>8.1} ms",
        v.len(),
        p50.as_secs_f64() * 1e3,
        p99.as_secs_f64() * 1e3,
        max.as_secs_f64() * 1e3
    );
}

fn main() -> anyhow::Result<()> {
    let args: Vec<usize> = std::env::args()
        .skip(1)
        .filter_map(|a| a.parse().ok())
        .collect();
    let writes = args.first().copied().unwrap_or(1000);
    let big = args.get(1).copied().unwrap_or(10);
    let dir = tempfile::tempdir_in(
        std::env::var_os("BENCH_DIR").map_or_else(std::env::temp_dir, PathBuf::from),
    )?;
    let mut cfg = HubConfig::new(dir.path().join("hub"));
    cfg.max_file_size = 1 << 30;
    let hub = Arc::new(Hub::open(cfg)?);
    let sites: BTreeSet<String> = [SITE.to_string()].into();
    hub.set_grants([("web-1".into(), sites.clone()), ("web-2".into(), sites)].into());
    let up = Arc::new(AtomicBool::new(true));
    let (ha, hb) = (
        InProcess::new(hub.clone(), "web-1", up.clone()),
        InProcess::new(hub.clone(), "web-2", up),
    );
    let (mut a, mut b) = (replica(dir.path(), "web-1")?, replica(dir.path(), "web-2")?);
    let mut seed = 0x9e37_79b9_7f4a_7c15u64;
    let mut next = || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    let (mut small, mut mid, mut large, mut huge) = (vec![], vec![], vec![], vec![]);
    let mut bytes = 0u64;
    let started = Instant::now();
    for i in 0..writes + big {
        let size = if i < writes {
            // log-uniform 1 KiB – 5 MiB
            let lo = (1024f64).ln();
            let hi = (5.0 * 1024.0 * 1024.0f64).ln();
            let f = (next() % 1_000_000) as f64 / 1_000_000.0;
            (lo + f * (hi - lo)).exp() as usize
        } else {
            100 << 20
        };
        let body: Vec<u8> = (0..size).map(|k| (k as u64 ^ next()) as u8).collect();
        let rel = format!("wp-content/uploads/{}/f{i}.bin", i % 20);
        let t0 = Instant::now();
        let p = a.root_path().join(&rel);
        std::fs::create_dir_all(p.parent().unwrap_or(Path::new(".")))?;
        std::fs::write(&p, &body)?;
        a.observe(&[Look::Path(rel.clone().into())])?;
        a.push(&ha)?;
        b.pull(&hb)?;
        let took = t0.elapsed();
        anyhow::ensure!(
            std::fs::metadata(b.root_path().join(&rel))?.len() == size as u64,
            "{rel} not on web-2"
        );
        bytes += size as u64;
        match size {
            s if s < 64 << 10 => small.push(took),
            s if s < 1 << 20 => mid.push(took),
            s if s < 50 << 20 => large.push(took),
            _ => huge.push(took),
        }
    }
    let total = started.elapsed();
    println!(
        "{} writes, {:.1} MiB in {:.1} s",
        writes + big,
        bytes as f64 / (1u64 << 20) as f64,
        total.as_secs_f64()
    );
    report("1-64 KiB", &mut small);
    report("64 KiB-1 MiB", &mut mid);
    report("1-5 MiB", &mut large);
    report("100 MiB", &mut huge);
    let mut all: Vec<Duration> = small.iter().chain(&mid).chain(&large).copied().collect();
    report("1 KiB-5 MiB", &mut all);
    Ok(())
}
