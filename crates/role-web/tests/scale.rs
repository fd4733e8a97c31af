//! Site-file replication at scale (issue 14: 1,000 sites and 1,000,000 files per web
//! server): one web engine (`web-a` on 127.0.18.2) replicating `SCALE_SITES` sites of
//! `SCALE_FILES` files each from a sitesync hub served over mutual TLS on 127.0.18.1
//! (on a runtime of its own, threads named `hub*`, so the engine's threads can be told
//! apart), and a second writer, `web-b`, as in-process sitesync replicas.
//!
//! It proves (asserts) that every file arrives, that a write on web-b reaches web-a's
//! tree, and that the engine's threads do not grow with the number of sites (one long
//! poll per files server and a bounded pool, not two threads per site). It prints the
//! figures (first fill, restart to open and to compared, threads, RSS, write → other
//! server latency, timed once the start-up comparisons are done) and never
//! asserts a timing. Defaults are small (CI); the bench/RESULTS.md figures come from
//! `SCALE_SITES=1000 SCALE_FILES=… cargo test -p role-web --test scale -- --nocapture`.

#![allow(clippy::unwrap_used)] // test helpers outside #[test] functions

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::{Duration, Instant};

use agent::supervisor::{EngineContext, RoleEngine};
use common::site;
use common::sync_pki::{identity_paths, Pki};
use proto::agent_v1::{RoleConfig, WebConfig};
use role_web::WebEngine;
use sitesync::hub::{Hub, HubConfig};
use sitesync::inprocess::InProcess;
use sitesync::replica::{Look, Replica, ReplicaConfig};
use sitesync::transport::server::run_hub_server;

const HUB_IP: &str = "127.0.18.1";
const WEB_IP: &str = "127.0.18.2";
/// Files per directory of a generated site.
const PER_DIR: usize = 100;

fn env(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn site_name(i: usize) -> String {
    format!("s{i:04}.example")
}

fn file_path(n: usize) -> String {
    format!("d{}/f{n}.txt", n / PER_DIR)
}

/// Writes `files` small files into the hub's tree of every site (before the hub opens:
/// it indexes them as the sites' content, as a files server with existing sites does).
fn generate(hub_dir: &Path, sites: usize, files: usize) {
    for i in 0..sites {
        let tree = hub_dir.join(site_name(i)).join("tree");
        for n in 0..files {
            let p = tree.join(file_path(n));
            if n % PER_DIR == 0 {
                std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            }
            std::fs::write(&p, format!("site {i} file {n}\n")).unwrap();
        }
    }
}

/// The engine's threads: every thread of this process not named `hub*` (the hub's).
fn engine_threads() -> usize {
    std::fs::read_dir("/proc/self/task")
        .unwrap()
        .filter_map(|t| std::fs::read_to_string(t.ok()?.path().join("comm")).ok())
        .filter(|name| !name.starts_with("hub"))
        .count()
}

/// This process's resident memory in MiB (the engine and the in-process hub together).
fn rss_mib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .unwrap_or(0)
        / 1024
}

fn start_engine(dir: &Path) -> WebEngine {
    let mut options = BTreeMap::new();
    options.insert("http_port".to_string(), "0".to_string());
    options.insert("https_port".to_string(), "0".to_string());
    let ctx = EngineContext {
        server: "web-a".into(),
        role: "web".into(),
        bind: WEB_IP.parse().unwrap(),
        state_dir: dir.join("web-a/engines/web"),
        identity: Some(identity_paths(&dir.join("web-a/tls"))),
        options,
        controllers: Vec::new(),
    };
    WebEngine::start(&ctx).unwrap()
}

fn tree(dir: &Path, i: usize) -> PathBuf {
    dir.join("web-a/engines/web/content")
        .join(site_name(i))
        .join("tree")
}

/// Waits until every site's last file is in web-a's tree and nothing waits to be
/// pushed; returns how long that took.
async fn filled(engine: &WebEngine, dir: &Path, sites: usize, files: usize) -> Duration {
    let t = Instant::now();
    let last = file_path(files - 1);
    loop {
        let done = (0..sites).all(|i| tree(dir, i).join(&last).is_file())
            && engine.replication().pending() == 0
            && !engine
                .replication()
                .summary()
                .is_some_and(|s| s.detail.contains("starting"));
        if done {
            return t.elapsed();
        }
        assert!(
            t.elapsed() < Duration::from_secs(3600),
            "not filled: {:?}",
            engine.replication().summary()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn pct(v: &mut [Duration], p: f64) -> Duration {
    v.sort();
    let i = ((v.len() as f64 - 1.0) * p).round() as usize;
    v.get(i).copied().unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_web_server_with_many_sites_keeps_its_threads_bounded() {
    let sites = env("SCALE_SITES", 40).max(1);
    let files = env("SCALE_FILES", 25).max(1);
    let writes = env("SCALE_WRITES", 20);
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().to_path_buf();
    let t = Instant::now();
    let d = dir.join("hub");
    tokio::task::spawn_blocking(move || generate(&d, sites, files))
        .await
        .unwrap();
    println!(
        "scale: {sites} sites x {files} files = {} files generated in {:.1} s",
        sites * files,
        t.elapsed().as_secs_f64()
    );

    // the hub, on a runtime of its own
    let hub_rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("hub")
        .enable_all()
        .build()
        .unwrap();
    let mut hcfg = HubConfig::new(dir.join("hub"));
    hcfg.reserve_bytes = 0;
    let hub = Arc::new(Hub::open(hcfg).unwrap());
    let names: BTreeSet<String> = (0..sites).map(site_name).collect();
    hub.set_grants([("web-a".into(), names.clone()), ("web-b".into(), names)].into());
    let pki = Pki::new();
    let listener = std::net::TcpListener::bind(format!("{HUB_IP}:0")).unwrap();
    listener.set_nonblocking(true).unwrap();
    let listener = {
        let _in_hub = hub_rt.enter();
        tokio::net::TcpListener::from_std(listener).unwrap()
    };
    let base = format!("https://{}", listener.local_addr().unwrap());
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = hub_rt.spawn(run_hub_server(
        listener,
        pki.server_config(HUB_IP),
        hub.clone(),
        async {
            let _ = stopped.await;
        },
    ));
    pki.identity(&dir.join("web-a/tls"), "web-a");
    let cfg = WebConfig {
        sites: (0..sites)
            .map(|i| {
                let mut s = site(&site_name(i));
                s.files_origin = Some(base.clone());
                std::sync::Arc::new(s)
            })
            .collect(),
        files_origin: None,
        peers: Vec::new(),
        acme_challenges: Vec::new(),
    };
    let before = engine_threads();

    // first start: every site filled from the hub
    let mut engine = start_engine(&dir);
    let t = Instant::now();
    engine.apply(&RoleConfig::Web(cfg.clone())).await.unwrap();
    let fill = filled(&engine, &dir, sites, files).await;
    let (threads, rss) = (engine_threads() - before, rss_mib());
    println!(
        "scale: first fill {:.1} s (apply {:.1} s); engine threads {threads}; RSS {rss} MiB",
        fill.as_secs_f64(),
        t.elapsed().as_secs_f64() - fill.as_secs_f64()
    );
    // two threads per site would be 2 x sites; the pool and the runtime are fixed
    assert!(
        threads < 40 + sites / 10,
        "{threads} threads for {sites} sites"
    );

    // a restart: the replicas open their indexes and compare their trees
    drop(engine);
    tokio::time::sleep(Duration::from_millis(500)).await;
    let t = Instant::now();
    let mut engine = start_engine(&dir);
    engine.apply(&RoleConfig::Web(cfg.clone())).await.unwrap();
    filled(&engine, &dir, sites, files).await;
    println!(
        "scale: restart to every replica open and watching {:.1} s; engine threads {}; RSS {} MiB",
        t.elapsed().as_secs_f64(),
        engine_threads() - before,
        rss_mib()
    );
    while engine.replication().comparing() > 0 {
        assert!(
            t.elapsed() < Duration::from_secs(3600),
            "start-up comparisons"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    println!(
        "scale: restart to every tree compared with its index and the hub's manifest {:.1} s; engine threads {}; RSS {} MiB",
        t.elapsed().as_secs_f64(),
        engine_threads() - before,
        rss_mib()
    );

    // writes on web-b (in-process replicas) reach web-a's tree
    let up = Arc::new(AtomicBool::new(true));
    let conn = InProcess::new(hub.clone(), "web-b", up);
    let mut lat = Vec::new();
    let mut replicas: BTreeMap<usize, Replica> = BTreeMap::new();
    for w in 0..writes {
        let i = (w * 7919) % sites;
        let (d, c) = (dir.clone(), conn.clone());
        let r = replicas.remove(&i);
        let (r, written) = tokio::task::spawn_blocking(move || {
            let mut r = r.unwrap_or_else(|| {
                let root = d.join("web-b").join(site_name(i));
                std::fs::create_dir_all(&root).unwrap();
                let mut r = Replica::open(ReplicaConfig {
                    site: site_name(i),
                    server: "web-b".into(),
                    root,
                    state: d.join("web-b-state").join(site_name(i)),
                    local: vec![],
                    keep: vec![],
                    owner: None,
                    chunk_size: 1 << 20,
                })
                .unwrap();
                r.sync(&c).unwrap();
                r
            });
            let rel = format!("new/w{w}.txt");
            let p = r.root_path().join(&rel);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(&p, format!("write {w}")).unwrap();
            let t = Instant::now();
            r.observe(&[Look::Path("new".into()), Look::Path(rel.clone().into())])
                .unwrap();
            r.sync(&c).unwrap();
            (r, (rel, t))
        })
        .await
        .unwrap();
        replicas.insert(i, r);
        let (rel, t) = written;
        let target = tree(&dir, i).join(&rel);
        loop {
            if std::fs::read(&target).is_ok_and(|b| b == format!("write {w}").as_bytes()) {
                break;
            }
            assert!(
                t.elapsed() < Duration::from_secs(60),
                "{rel} of site {i} not on web-a"
            );
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        lat.push(t.elapsed());
    }
    if !lat.is_empty() {
        let max = lat.iter().max().copied().unwrap_or_default();
        println!(
            "scale: write on web-b -> in web-a's tree: n={} p50 {:.1} ms p99 {:.1} ms max {:.1} ms",
            lat.len(),
            pct(&mut lat, 0.5).as_secs_f64() * 1e3,
            pct(&mut lat, 0.99).as_secs_f64() * 1e3,
            max.as_secs_f64() * 1e3
        );
    }
    println!(
        "scale: engine threads {}; RSS {} MiB",
        engine_threads() - before,
        rss_mib()
    );
    drop(engine);
    let _ = stop.send(());
    server.await.unwrap();
    hub_rt.shutdown_background();
}
