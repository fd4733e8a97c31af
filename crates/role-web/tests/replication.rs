//! Site-file replication through real processes (issue 14): a sitesync hub served
//! in-process over HTTPS with mutual TLS (test certificates), two web engines as two
//! servers (`web-a` on 127.0.15.2, `web-b` on 127.0.15.3) with the agent identity the
//! hub checks, and real php-fpm running the site's PHP as its own user. What PHP writes
//! on A (plain writes, write-to-temp-then-rename, mkdir, unlink, rename) is served by
//! B within 2 s with the same mtime and ETag; with the hub down PHP still writes on A,
//! A reports it, and B converges once the hub is back; local paths stay local.

#![allow(clippy::unwrap_used)] // test helpers outside #[test] functions

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use agent::supervisor::{EngineContext, RoleEngine};
use common::sync_pki::{identity_paths, Pki};
use common::{args, curl, site};
use proto::agent_v1::{EngineState, RoleConfig, WebConfig};
use role_web::WebEngine;
use sitesync::hub::{Hub, HubConfig};
use sitesync::transport::server::run_hub_server;

const SITE: &str = "shop.example";
/// A `single` site: active on A, on standby on B.
const STANDBY: &str = "standby.example";
const HUB_IP: &str = "127.0.15.1";

/// The PHP side of the test: one request, one file-system operation, as applications
/// do them; answers `ok` or the error PHP got.
const WRITER: &str = r#"<?php
header('Content-Type: text/plain');
$p = __DIR__ . '/' . $_GET['p'];
$ok = false;
switch ($_GET['op']) {
    case 'put': $ok = file_put_contents($p, $_GET['d']) !== false; break;
    case 'atomic':
        $t = $p . '.tmp-' . getmypid();
        $ok = file_put_contents($t, $_GET['d']) !== false && rename($t, $p);
        break;
    case 'mkdir': $ok = mkdir($p, 0755, true); break;
    case 'unlink': $ok = unlink($p); break;
    case 'fill': $ok = file_put_contents($p, str_repeat('x', (int)$_GET['n'])) !== false; break;
    case 'rename': $ok = rename($p, __DIR__ . '/' . $_GET['to']); break;
}
if ($ok) { echo "ok"; } else { http_response_code(500); echo "failed: ", error_get_last()['message'] ?? '?'; }
"#;

/// The hub served on a fixed address, stoppable and restartable there.
struct HubServer {
    hub: Arc<Hub>,
    tls: Arc<rustls::ServerConfig>,
    addr: std::net::SocketAddr,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl HubServer {
    async fn start(hub: Arc<Hub>, tls: Arc<rustls::ServerConfig>, addr: &str) -> HubServer {
        let listener = tokio::net::TcpListener::bind(addr).await.unwrap();
        let addr = listener.local_addr().unwrap();
        let mut s = HubServer {
            hub,
            tls,
            addr,
            stop: None,
            task: None,
        };
        s.serve(listener);
        s
    }

    fn serve(&mut self, listener: tokio::net::TcpListener) {
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        self.stop = Some(stop);
        self.task = Some(tokio::spawn(run_hub_server(
            listener,
            self.tls.clone(),
            self.hub.clone(),
            async {
                let _ = stopped.await;
            },
        )));
    }

    fn base(&self) -> String {
        format!("https://{}", self.addr)
    }

    async fn down(&mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        if let Some(t) = self.task.take() {
            t.await.unwrap();
        }
    }

    async fn up(&mut self) {
        let listener = tokio::net::TcpListener::bind(self.addr).await.unwrap();
        self.serve(listener);
    }
}

struct Web {
    engine: WebEngine,
    state: PathBuf,
    ip: &'static str,
}

impl Web {
    fn start(dir: &Path, name: &str, ip: &'static str, pki: &Pki) -> Web {
        pki.identity(&dir.join(name).join("tls"), name);
        Web::restart(dir, name, ip)
    }

    /// Starts the engine of `name` with the state and identity files it has.
    fn restart(dir: &Path, name: &str, ip: &'static str) -> Web {
        let mut options = BTreeMap::new();
        options.insert("http_port".to_string(), "0".to_string());
        options.insert("https_port".to_string(), "0".to_string());
        let state = dir.join(name).join("engines/web");
        let ctx = EngineContext {
            server: name.into(),
            role: "web".into(),
            bind: ip.parse().unwrap(),
            state_dir: state.clone(),
            identity: Some(identity_paths(&dir.join(name).join("tls"))),
            options,
            controllers: Vec::new(),
        };
        Web {
            engine: WebEngine::start(&ctx).unwrap(),
            state,
            ip,
        }
    }

    fn tree(&self) -> PathBuf {
        self.state.join("content").join(SITE).join("tree")
    }

    async fn get(&self, path: &str) -> common::Got {
        let port = self.engine.http_addr().port();
        curl(args(&[
            "--resolve",
            &format!("{SITE}:{port}:{}", self.ip),
            &format!("http://{SITE}:{port}{path}"),
        ]))
        .await
    }

    /// Runs one operation through PHP on this server.
    async fn php(&self, query: &str) {
        let g = self.get(&format!("/w.php?{query}")).await;
        assert_eq!((g.status, g.text().as_str()), (200, "ok"), "{query}: {g:?}");
    }
}

/// Waits until `f` holds, polling every 20 ms, for at most `limit`; returns how long.
async fn until<F, Fut>(limit: Duration, what: &str, mut f: F) -> Duration
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let t = Instant::now();
    loop {
        if f().await {
            return t.elapsed();
        }
        assert!(t.elapsed() < limit, "{what} not within {limit:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// B serves `path` with `body`, and with A's Last-Modified and ETag, within `limit`.
async fn served_alike(a: &Web, b: &Web, path: &str, body: &str, limit: Duration) -> Duration {
    let took = until(limit, &format!("{path} on B"), || async {
        let g = b.get(path).await;
        g.status == 200 && g.text() == body
    })
    .await;
    let (ga, gb) = (a.get(path).await, b.get(path).await);
    assert_eq!(ga.text(), body);
    for h in ["etag", "last-modified"] {
        assert_eq!(ga.header(h), gb.header(h), "{h} of {path}");
    }
    took
}

async fn gone_on(b: &Web, path: &str, limit: Duration) {
    until(limit, &format!("{path} gone on B"), || async {
        b.get(path).await.status == 404
    })
    .await;
}

/// A hub and web servers `web-a` and `web-b` on `ips` holding the PHP site with
/// `cfg_site` applied to it, the writer script put into A's tree and replicated.
struct Setup {
    tmp: tempfile::TempDir,
    hub: Arc<Hub>,
    hs: HubServer,
    a: Web,
    b: Web,
    cfg: WebConfig,
}

async fn setup(ips: [&'static str; 2], tune: impl FnOnce(&mut proto::agent_v1::WebSite)) -> Setup {
    role_web::fpm::find_binary().expect("php-fpm must be installed (apt-get install php-fpm)");
    let tmp = tempfile::tempdir().unwrap();
    let pki = Pki::new();
    let mut hcfg = HubConfig::new(tmp.path().join("hub"));
    hcfg.reserve_bytes = 0;
    let hub = Arc::new(Hub::open(hcfg).unwrap());
    let sites: BTreeSet<String> = [SITE.to_string(), STANDBY.to_string()].into();
    hub.set_grants([("web-a".into(), sites.clone()), ("web-b".into(), sites)].into());
    let hs = HubServer::start(
        hub.clone(),
        pki.server_config(HUB_IP),
        &format!("{HUB_IP}:0"),
    )
    .await;

    let mut a = Web::start(tmp.path(), "web-a", ips[0], &pki);
    let mut b = Web::start(tmp.path(), "web-b", ips[1], &pki);
    let mut shop = site(SITE);
    shop.php = true;
    shop.files_origin = Some(hs.base());
    tune(&mut shop);
    let cfg = WebConfig {
        sites: vec![shop].into_iter().map(std::sync::Arc::new).collect(),
        files_origin: None,
        peers: Vec::new(),
        acme_challenges: Vec::new(),
    };
    for w in [&mut a, &mut b] {
        w.engine.apply(&RoleConfig::Web(cfg.clone())).await.unwrap();
    }
    until(Duration::from_secs(10), "trees", || async {
        a.tree().is_dir() && b.tree().is_dir()
    })
    .await;
    // a file put into A's tree directly (as an operator would) reaches B too
    std::fs::write(a.tree().join("w.php"), WRITER).unwrap();
    until(Duration::from_secs(10), "w.php on B", || async {
        b.tree().join("w.php").is_file()
    })
    .await;
    Setup {
        tmp,
        hub,
        hs,
        a,
        b,
        cfg,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn php_writes_on_one_server_are_served_by_the_other() {
    let Setup {
        tmp: _tmp,
        hub,
        mut hs,
        mut a,
        mut b,
        ..
    } = setup(["127.0.15.2", "127.0.15.3"], |s| {
        s.local_paths = vec!["cache".into()];
    })
    .await;
    let h = b.engine.health();
    assert_eq!(h.state, EngineState::Ok, "{}", h.detail);
    assert!(
        h.detail.contains("replicating 1 sites, 0 changes waiting"),
        "{}",
        h.detail
    );

    // PHP writes on A as the site's user; B serves each result within 2 s
    let two = Duration::from_secs(2);
    a.php("op=put&p=hello.txt&d=hello").await;
    let took = served_alike(&a, &b, "/hello.txt", "hello", two).await;
    eprintln!("plain write served by B after {took:?}");
    a.php("op=atomic&p=config.json&d=%7B%7D").await;
    served_alike(&a, &b, "/config.json", "{}", two).await;
    a.php("op=atomic&p=config.json&d=%7B1%7D").await;
    served_alike(&a, &b, "/config.json", "{1}", two).await;
    a.php("op=mkdir&p=uploads/2026/12").await;
    a.php("op=put&p=uploads/2026/12/pic.txt&d=pixels").await;
    served_alike(&a, &b, "/uploads/2026/12/pic.txt", "pixels", two).await;
    a.php("op=rename&p=uploads/2026&to=uploads/old").await;
    served_alike(&a, &b, "/uploads/old/12/pic.txt", "pixels", two).await;
    gone_on(&b, "/uploads/2026/12/pic.txt", two).await;
    a.php("op=unlink&p=hello.txt").await;
    gone_on(&b, "/hello.txt", two).await;
    // no temp name of the atomic writes ever reached B
    let names: Vec<String> = std::fs::read_dir(b.tree())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert!(!names.iter().any(|n| n.contains(".tmp-")), "{names:?}");
    // what B applied did not come back from B as a change of its own (no echo)
    tokio::time::sleep(Duration::from_millis(500)).await;
    let origins = || match hub.log_after(SITE, 0, 10_000).unwrap() {
        proto::sitesync::LogRead::Entries { entries, .. } => entries
            .into_iter()
            .map(|e| (e.origin, e.change.path))
            .collect::<Vec<_>>(),
        other => panic!("{other:?}"),
    };
    let from_b: Vec<_> = origins()
        .into_iter()
        .filter(|(o, _)| o == "web-b")
        .collect();
    assert!(from_b.is_empty(), "{from_b:?}");
    // PHP on B writes as well, and A gets it
    b.php("op=put&p=from-b.txt&d=bee").await;
    served_alike(&b, &a, "/from-b.txt", "bee", two).await;

    // local paths stay local: neither pushed nor overwritten
    a.php("op=mkdir&p=cache").await;
    a.php("op=put&p=cache/page.html&d=A").await;
    b.php("op=mkdir&p=cache").await;
    b.php("op=put&p=cache/page.html&d=B").await;
    a.php("op=put&p=marker.txt&d=after-cache").await;
    served_alike(&a, &b, "/marker.txt", "after-cache", two).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(a.get("/cache/page.html").await.text(), "A");
    assert_eq!(b.get("/cache/page.html").await.text(), "B");
    assert!(!hub.tree_path(SITE).join("cache").exists());

    // the hub goes down: PHP keeps writing on A, A says so, B converges once it is back
    hs.down().await;
    a.php("op=put&p=offline.txt&d=kept").await;
    a.php("op=atomic&p=config.json&d=%7B2%7D").await;
    until(Duration::from_secs(10), "A degraded", || async {
        let h = a.engine.health();
        h.state == EngineState::Degraded
            && h.detail.contains("unreachable")
            && !h.detail.contains(" 0 changes waiting")
    })
    .await;
    assert_eq!(a.get("/offline.txt").await.text(), "kept");
    assert_eq!(b.get("/offline.txt").await.status, 404);
    hs.up().await;
    let took = served_alike(&a, &b, "/offline.txt", "kept", Duration::from_secs(40)).await;
    eprintln!("written while the hub was down: served by B {took:?} after its return");
    served_alike(&a, &b, "/config.json", "{2}", two).await;
    until(Duration::from_secs(40), "A healthy again", || async {
        let h = a.engine.health();
        h.state == EngineState::Ok && h.detail.contains(" 0 changes waiting")
    })
    .await;
    // the hub's tree is both servers' tree, local paths aside
    let hub_files = |root: &Path| {
        let mut out = BTreeMap::new();
        let mut stack = vec![root.to_path_buf()];
        while let Some(d) = stack.pop() {
            for e in std::fs::read_dir(&d).unwrap() {
                let e = e.unwrap();
                let rel = e.path().strip_prefix(root).unwrap().display().to_string();
                if rel == "cache" {
                    continue;
                }
                if e.file_type().unwrap().is_dir() {
                    stack.push(e.path());
                    out.insert(rel, None);
                } else {
                    out.insert(rel, Some(std::fs::read(e.path()).unwrap()));
                }
            }
        }
        out
    };
    let on_hub = hub_files(&hub.tree_path(SITE));
    assert!(on_hub.contains_key("offline.txt"), "{:?}", on_hub.keys());
    assert_eq!(hub_files(&a.tree()), on_hub);
    assert_eq!(hub_files(&b.tree()), on_hub);

    a.engine.shutdown().await;
    b.engine.shutdown().await;
    hs.down().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn over_quota_php_cannot_write_until_back_under() {
    let Setup {
        tmp: _tmp,
        mut hs,
        mut a,
        mut b,
        mut cfg,
        ..
    } = setup(["127.0.15.4", "127.0.15.5"], |s| s.quota_mb = 1).await;
    a.php("op=put&p=small.txt&d=fits").await;
    // 1.5 MiB: the write that crosses the limit succeeds, the next one fails at once
    a.php("op=fill&p=big.bin&n=1572864").await;
    until(Duration::from_secs(5), "A over quota", || async {
        a.engine
            .health()
            .detail
            .contains("over quota: shop.example")
    })
    .await;
    for query in [
        "op=put&p=new.txt&d=no",
        "op=put&p=small.txt&d=no",
        "op=unlink&p=small.txt",
        "op=mkdir&p=dir",
    ] {
        let g = a.get(&format!("/w.php?{query}")).await;
        assert_eq!(g.status, 500, "{query}: {g:?}");
        assert!(g.text().contains("Permission denied"), "{query}: {g:?}");
    }
    let log = std::fs::read_to_string(a.state.join("logs/error.log")).unwrap();
    assert!(
        log.contains("shop.example: over its disk quota (2 MiB used of 1 MiB)"),
        "{log}"
    );
    assert_eq!(a.get("/small.txt").await.text(), "fits");
    // B holds the same files, so it is over as well
    until(Duration::from_secs(5), "B over quota", || async {
        b.engine
            .health()
            .detail
            .contains("over quota: shop.example")
    })
    .await;
    // the operator deletes the big file on A (as FTP would): both are back under
    std::fs::remove_file(a.tree().join("big.bin")).unwrap();
    until(Duration::from_secs(5), "A back under", || async {
        !a.engine.health().detail.contains("over quota")
    })
    .await;
    a.php("op=put&p=new.txt&d=yes").await;
    until(Duration::from_secs(5), "B back under", || async {
        !b.engine.health().detail.contains("over quota")
    })
    .await;
    b.php("op=put&p=from-b.txt&d=yes").await;
    // a raised limit unlocks as well (the site's replica restarts with it)
    a.php("op=fill&p=big.bin&n=1572864").await;
    until(Duration::from_secs(5), "A over quota again", || async {
        a.engine.health().detail.contains("over quota")
    })
    .await;
    std::sync::Arc::make_mut(&mut cfg.sites[0]).quota_mb = 10;
    a.engine.apply(&RoleConfig::Web(cfg.clone())).await.unwrap();
    until(
        Duration::from_secs(10),
        "A under the raised limit",
        || async {
            let h = a.engine.health();
            h.detail.contains("replicating 1 sites")
                && !h.detail.contains("starting")
                && !h.detail.contains("over quota")
        },
    )
    .await;
    a.php("op=put&p=more.txt&d=yes").await;

    a.engine.shutdown().await;
    b.engine.shutdown().await;
    hs.down().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sites_come_and_go_without_touching_the_others() {
    let Setup {
        tmp: _tmp,
        hs,
        mut a,
        mut b,
        cfg,
        ..
    } = setup(["127.0.15.6", "127.0.15.7"], |_| {}).await;
    let standby = |active: bool| -> proto::agent_v1::WebSite {
        serde_json::from_value(serde_json::json!({
            "domain": STANDBY, "mode": "single", "active": active,
            "files_origin": hs.base(),
        }))
        .unwrap()
    };
    assert_eq!(a.engine.replication().loops_started(), 1);
    let (mut on_a, mut on_b) = (cfg.clone(), cfg.clone());
    on_a.sites.push(standby(true).into());
    on_b.sites.push(standby(false).into());
    a.engine.apply(&RoleConfig::Web(on_a)).await.unwrap();
    b.engine.apply(&RoleConfig::Web(on_b)).await.unwrap();
    // one loop more each: the shop's was not restarted
    assert_eq!(a.engine.replication().loops_started(), 2);
    assert_eq!(b.engine.replication().loops_started(), 2);
    let tree = |w: &Web| w.state.join("content").join(STANDBY).join("tree");
    until(Duration::from_secs(10), "standby trees", || async {
        tree(&a).is_dir() && tree(&b).is_dir()
    })
    .await;
    // the server holding the site on standby keeps its files in sync
    std::fs::write(tree(&a).join("index.html"), "standby").unwrap();
    until(Duration::from_secs(5), "standby file on B", || async {
        std::fs::read(tree(&b).join("index.html")).is_ok_and(|d| d == b"standby")
    })
    .await;
    use std::os::unix::fs::MetadataExt;
    let (ma, mb) = (
        std::fs::metadata(tree(&a).join("index.html")).unwrap(),
        std::fs::metadata(tree(&b).join("index.html")).unwrap(),
    );
    assert_eq!((ma.mtime(), ma.mtime_nsec()), (mb.mtime(), mb.mtime_nsec()));
    a.php("op=put&p=during.txt&d=1").await;
    served_alike(&a, &b, "/during.txt", "1", Duration::from_secs(2)).await;

    // the standby site goes: its files and replica state go, the shop goes on
    for w in [&mut a, &mut b] {
        w.engine.apply(&RoleConfig::Web(cfg.clone())).await.unwrap();
        assert_eq!(w.engine.replication().loops_started(), 2);
        assert!(!w.state.join("content").join(STANDBY).exists());
        assert!(!w.state.join("replicas").join(STANDBY).exists());
    }
    a.php("op=put&p=after.txt&d=2").await;
    served_alike(&a, &b, "/after.txt", "2", Duration::from_secs(2)).await;

    let mut hs = hs;
    a.engine.shutdown().await;
    b.engine.shutdown().await;
    hs.down().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn writes_made_while_the_hub_is_down_survive_a_restart_of_the_engine() {
    let Setup {
        tmp,
        mut hs,
        mut a,
        mut b,
        cfg,
        ..
    } = setup(["127.0.15.8", "127.0.15.9"], |_| {}).await;
    hs.down().await;
    a.php("op=put&p=queued.txt&d=durable").await;
    until(Duration::from_secs(10), "the write queued on A", || async {
        let h = a.engine.health();
        h.detail.contains("unreachable") && h.detail.contains(" 1 changes waiting")
    })
    .await;
    // A's engine stops with the change in its outbox, and starts again
    a.engine.shutdown().await;
    drop(a);
    // same state directory and identity files, as an agent restarting
    let mut a = Web::restart(tmp.path(), "web-a", "127.0.15.8");
    a.engine.apply(&RoleConfig::Web(cfg.clone())).await.unwrap();
    assert_eq!(a.get("/queued.txt").await.text(), "durable");
    hs.up().await;
    served_alike(&a, &b, "/queued.txt", "durable", Duration::from_secs(10)).await;

    a.engine.shutdown().await;
    b.engine.shutdown().await;
    hs.down().await;
}
