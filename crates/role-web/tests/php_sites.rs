//! Adding and removing a PHP site does not disturb another (issue 13): while a
//! client keeps requesting a PHP page of site A through the engine (real php-fpm),
//! site B is added, served and removed; no request to A fails, A is answered by the
//! same php-fpm worker and master throughout, B runs in a master of its own, and
//! every php-fpm process is gone after the engine's shutdown. Sites added one apply
//! at a time end up in a bounded number of masters, and a busy site is never moved.

#![allow(clippy::unwrap_used)] // test helpers outside #[test] functions

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use agent::supervisor::{EngineContext, RoleEngine};
use common::site;
use proto::agent_v1::{EngineState, RoleConfig, WebConfig};
use role_web::plan::pool_user;
use role_web::WebEngine;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const PID_PHP: &str = "<?php echo 'pid=', getmypid(), \"\\n\";";

fn ctx(state: &std::path::Path) -> EngineContext {
    let mut options = BTreeMap::new();
    options.insert("http_port".to_string(), "0".to_string());
    options.insert("https_port".to_string(), "0".to_string());
    EngineContext {
        server: "web-1".into(),
        role: "web".into(),
        bind: "127.0.0.1".parse().unwrap(),
        state_dir: state.join("engines/web"),
        identity: None,
        options,
        controllers: Vec::new(),
    }
}

fn publish(state: &std::path::Path, domain: &str, name: &str, body: &str) {
    let site = state.join("engines/web/content").join(domain);
    std::fs::create_dir_all(site.join("releases/r1")).unwrap();
    std::fs::write(site.join("releases/r1").join(name), body).unwrap();
    let _ = std::os::unix::fs::symlink("releases/r1", site.join("current"));
}

/// One plain HTTP/1.1 GET; `(status, body)`, or why it failed.
async fn get(addr: SocketAddr, host: &str, path: &str) -> Result<(u16, String), String> {
    let mut s = tokio::net::TcpStream::connect(addr)
        .await
        .map_err(|e| e.to_string())?;
    let req = format!("GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n");
    s.write_all(req.as_bytes())
        .await
        .map_err(|e| e.to_string())?;
    let mut buf = Vec::new();
    tokio::time::timeout(Duration::from_secs(20), s.read_to_end(&mut buf))
        .await
        .map_err(|_| "timeout".to_string())?
        .map_err(|e| e.to_string())?;
    let text = String::from_utf8_lossy(&buf).into_owned();
    let status = text
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| format!("no status line: {text:?}"))?;
    let body = text.split_once("\r\n\r\n").map(|x| x.1).unwrap_or("");
    Ok((status, body.to_string()))
}

/// A php-fpm process: pid, parent, title.
#[derive(Debug, Clone)]
struct Proc {
    pid: i32,
    ppid: i32,
    title: String,
}

fn fpm_procs() -> Vec<Proc> {
    let mut out = Vec::new();
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        let Ok(cmd) = std::fs::read(e.path().join("cmdline")) else {
            continue;
        };
        let title = String::from_utf8_lossy(&cmd).replace('\0', " ");
        if !title.starts_with("php-fpm") {
            continue;
        }
        let Ok(stat) = std::fs::read_to_string(e.path().join("stat")) else {
            continue;
        };
        let Some(ppid) = stat
            .rsplit_once(") ")
            .and_then(|(_, r)| r.split_whitespace().nth(1))
            .and_then(|p| p.parse().ok())
        else {
            continue;
        };
        out.push(Proc { pid, ppid, title });
    }
    out
}

/// The masters whose config lives under `marker` (this test's state dir).
fn masters(marker: &str) -> Vec<Proc> {
    fpm_procs()
        .into_iter()
        .filter(|p| p.title.contains("master process") && p.title.contains(marker))
        .collect()
}

/// The master under `marker` running `pool`'s workers, and those workers' pids.
fn pool_procs(marker: &str, pool: &str) -> (Option<i32>, BTreeSet<i32>) {
    let masters: Vec<i32> = masters(marker).iter().map(|m| m.pid).collect();
    let workers: Vec<Proc> = fpm_procs()
        .into_iter()
        .filter(|p| p.title.trim_end() == format!("php-fpm: pool {pool}"))
        .filter(|p| masters.contains(&p.ppid))
        .collect();
    (
        workers.first().map(|w| w.ppid),
        workers.iter().map(|w| w.pid).collect(),
    )
}

/// The pid PHP printed (the body may be chunked: the digits after `pid=`).
fn pid_of(body: &str) -> i32 {
    body.split_once("pid=")
        .and_then(|(_, rest)| {
            let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
            digits.parse().ok()
        })
        .unwrap_or_else(|| panic!("no pid in {body:?}"))
}

#[tokio::test]
async fn adding_and_removing_a_php_site_does_not_disturb_another() {
    if role_web::fpm::find_binary().is_none() {
        panic!("php-fpm must be installed (apt-get install php-fpm)");
    }
    let tmp = tempfile::tempdir().unwrap();
    let marker = tmp.path().display().to_string();
    let mut engine = WebEngine::start(&ctx(tmp.path())).unwrap();
    let addr = engine.http_addr();
    let (a_dom, b_dom) = ("steady-a.example", "steady-b.example");
    publish(tmp.path(), a_dom, "pid.php", PID_PHP);
    let mut a = site(a_dom);
    a.php = true;
    let mut b = site(b_dom);
    b.php = true;
    let only_a = WebConfig {
        sites: vec![a.clone(), site("static.example")]
            .into_iter()
            .map(std::sync::Arc::new)
            .collect(),
        files_origin: None,
        peers: Vec::new(),
        acme_challenges: Vec::new(),
    };
    let with_b = WebConfig {
        sites: vec![a, site("static.example"), b]
            .into_iter()
            .map(std::sync::Arc::new)
            .collect(),
        files_origin: None,
        peers: Vec::new(),
        acme_challenges: Vec::new(),
    };
    engine
        .apply(&RoleConfig::Web(only_a.clone()))
        .await
        .unwrap();

    // A's worker, seen from PHP and from /proc.
    let (status, body) = get(addr, a_dom, "/pid.php").await.unwrap();
    assert_eq!(status, 200, "{body}");
    let first_worker = pid_of(&body);
    let (a_master, a_workers) = pool_procs(&marker, &pool_user(a_dom));
    let a_master = a_master.expect("A's master");
    assert_eq!(a_workers, BTreeSet::from([first_worker]));

    // Keep requesting A (paced: a worker is recycled after 1,000 requests).
    let stop = Arc::new(AtomicBool::new(false));
    let done = Arc::new(AtomicUsize::new(0));
    let failures = Arc::new(Mutex::new(Vec::<String>::new()));
    let seen = Arc::new(Mutex::new(BTreeSet::<i32>::new()));
    let client = {
        let (stop, done, failures, seen) =
            (stop.clone(), done.clone(), failures.clone(), seen.clone());
        tokio::spawn(async move {
            while !stop.load(Ordering::Relaxed) {
                match get(addr, a_dom, "/pid.php").await {
                    Ok((200, body)) => {
                        seen.lock().unwrap().insert(pid_of(&body));
                    }
                    Ok((status, body)) => failures.lock().unwrap().push(format!("{status} {body}")),
                    Err(e) => failures.lock().unwrap().push(e),
                }
                done.fetch_add(1, Ordering::Relaxed);
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        })
    };
    let wait_for_requests = |n: usize| {
        let done = done.clone();
        async move {
            let target = done.load(Ordering::Relaxed) + n;
            while done.load(Ordering::Relaxed) < target {
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        }
    };
    wait_for_requests(10).await;

    // Add B: it is served, by a master of its own.
    let before_add = done.load(Ordering::Relaxed);
    publish(tmp.path(), b_dom, "pid.php", PID_PHP);
    engine
        .apply(&RoleConfig::Web(with_b.clone()))
        .await
        .unwrap();
    let h = engine.health();
    assert_eq!(h.state, EngineState::Ok, "{}", h.detail);
    assert!(h.detail.contains("(2 with PHP)"), "{}", h.detail);
    let (status, body) = get(addr, b_dom, "/pid.php").await.unwrap();
    assert_eq!(status, 200, "{body}");
    let (b_master, _) = pool_procs(&marker, &pool_user(b_dom));
    let b_master = b_master.expect("B's master");
    assert_ne!(b_master, a_master, "B must not share A's master");
    wait_for_requests(10).await;

    // Remove B: gone, and its master with it.
    engine
        .apply(&RoleConfig::Web(only_a.clone()))
        .await
        .unwrap();
    assert_eq!(get(addr, b_dom, "/pid.php").await.unwrap().0, 404);
    assert!(
        !masters(&marker).iter().any(|m| m.pid == b_master),
        "B's master is stopped"
    );
    // And once more, B back and gone again (its removed content published anew).
    publish(tmp.path(), b_dom, "pid.php", PID_PHP);
    engine.apply(&RoleConfig::Web(with_b)).await.unwrap();
    assert_eq!(get(addr, b_dom, "/pid.php").await.unwrap().0, 200);
    engine.apply(&RoleConfig::Web(only_a)).await.unwrap();
    wait_for_requests(10).await;
    stop.store(true, Ordering::Relaxed);
    client.await.unwrap();

    let total = done.load(Ordering::Relaxed);
    assert!(
        total >= before_add + 20,
        "the client ran during the changes"
    );
    let failures = failures.lock().unwrap().clone();
    assert!(
        failures.is_empty(),
        "{} of {total} requests to A failed: {failures:?}",
        failures.len()
    );
    assert_eq!(
        *seen.lock().unwrap(),
        BTreeSet::from([first_worker]),
        "A was answered by its first worker only"
    );
    let (master_after, workers_after) = pool_procs(&marker, &pool_user(a_dom));
    assert_eq!(master_after, Some(a_master), "A's master was not replaced");
    assert_eq!(workers_after, a_workers, "A's workers were not replaced");

    engine.shutdown().await;
    let left: Vec<Proc> = fpm_procs()
        .into_iter()
        .filter(|p| p.pid == a_master || p.ppid == a_master || p.title.contains(&marker))
        .collect();
    assert!(left.is_empty(), "php-fpm left after shutdown: {left:?}");
}

/// Requests A in a loop until `stop`; returns (requests, failures, worker pids seen).
fn busy_client(
    addr: SocketAddr,
    host: &'static str,
    stop: Arc<AtomicBool>,
) -> tokio::task::JoinHandle<(usize, Vec<String>, BTreeSet<i32>)> {
    tokio::spawn(async move {
        let (mut n, mut failures, mut seen) = (0, Vec::new(), BTreeSet::new());
        while !stop.load(Ordering::Relaxed) {
            match get(addr, host, "/pid.php").await {
                Ok((200, body)) => {
                    seen.insert(pid_of(&body));
                }
                Ok((status, body)) => failures.push(format!("{status} {body}")),
                Err(e) => failures.push(e),
            }
            n += 1;
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        (n, failures, seen)
    })
}

#[tokio::test]
async fn sites_added_one_by_one_share_few_masters_and_a_busy_site_is_never_moved() {
    let tmp = tempfile::tempdir().unwrap();
    let marker = tmp.path().display().to_string();
    let mut engine = WebEngine::start(&ctx(tmp.path())).unwrap();
    let addr = engine.http_addr();
    let a_dom = "busy-a.example";
    publish(tmp.path(), a_dom, "pid.php", PID_PHP);
    let mut a = site(a_dom);
    a.php = true;
    let mut cfg = WebConfig {
        sites: vec![a].into_iter().map(std::sync::Arc::new).collect(),
        files_origin: None,
        peers: Vec::new(),
        acme_challenges: Vec::new(),
    };
    engine.apply(&RoleConfig::Web(cfg.clone())).await.unwrap();
    let (status, body) = get(addr, a_dom, "/pid.php").await.unwrap();
    assert_eq!(status, 200, "{body}");
    let first_worker = pid_of(&body);
    let (a_master, _) = pool_procs(&marker, &pool_user(a_dom));
    let stop = Arc::new(AtomicBool::new(false));
    let client = busy_client(addr, a_dom, stop.clone());

    // Eight sites, one apply each: each starts a master; beyond MERGE_ABOVE the idle
    // ones (not A's, which is busy) are merged.
    let names: Vec<String> = (1..=8).map(|i| format!("batch{i}.example")).collect();
    for name in &names {
        publish(tmp.path(), name, "pid.php", PID_PHP);
        let mut s = site(name);
        s.php = true;
        cfg.sites.push(s.into());
        engine.apply(&RoleConfig::Web(cfg.clone())).await.unwrap();
        // (Not requested yet: a site requested within the idle timeout keeps a
        // worker, and a master with a worker is never merged.)
    }
    let count = masters(&marker).len();
    assert!(
        count <= role_web::fpm::MERGE_ABOVE + 1,
        "{count} masters for 9 sites added one by one"
    );
    // Every site still answers after the merges.
    for name in &names {
        let (status, body) = get(addr, name, "/pid.php").await.unwrap();
        assert_eq!(status, 200, "{name} after the merges: {body}");
    }
    stop.store(true, Ordering::Relaxed);
    let (n, failures, seen) = client.await.unwrap();
    assert!(n >= 20, "the client ran during the changes ({n})");
    assert!(failures.is_empty(), "{failures:?}");
    assert_eq!(seen, BTreeSet::from([first_worker]));
    assert_eq!(pool_procs(&marker, &pool_user(a_dom)).0, a_master);
    engine.shutdown().await;
    assert!(masters(&marker).is_empty(), "masters left after shutdown");
}
