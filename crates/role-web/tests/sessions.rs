//! PHP sessions shared by the web servers of a cluster (issue 15), through real
//! processes: two web engines as two servers (`web-a` on 127.0.16.2, `web-b` on
//! 127.0.16.3) with agent identities from a test CA, real php-fpm running a small
//! login app as each site's own user with php-redis's session handler, and curl with
//! a cookie jar as the browser.
//!
//! A user logs in through A and is logged in through B; another site asking for the
//! same session id (on either server) sees nothing and cannot overwrite it; a process
//! that is no site's gets `-NOPERM`; a server outside the cluster cannot write; a peer that never answers delays a login by at
//! most the bound; a restarted server gets the sessions back from its peer.

#![allow(clippy::unwrap_used)] // test helpers outside #[test] functions

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use agent::supervisor::{EngineContext, RoleEngine};
use common::sync_pki::{identity_paths, Pki};
use common::{args, curl, site};
use proto::agent_v1::{RoleConfig, WebConfig, WebPeer};
use role_web::WebEngine;

const SHOP: &str = "shop.example";
const OTHER: &str = "other.example";
/// How long a session write waits for the peers at most (the engine option).
const WAIT: Duration = Duration::from_millis(1000);

const LOGIN: &str = r#"<?php
if (!session_start()) { http_response_code(500); echo "no session: ", error_get_last()['message'] ?? '?'; exit; }
if ($_SERVER['REQUEST_METHOD'] === 'POST') { $_SESSION['user'] = $_POST['user']; }
echo "user=", $_SESSION['user'] ?? 'nobody';
"#;

/// Another site's attempt at a session id it learnt.
const PEEK: &str = r#"<?php
session_id($_GET['sid']);
if (!session_start()) { http_response_code(500); echo "no session"; exit; }
$seen = $_SESSION['user'] ?? 'nobody';
if (isset($_GET['set'])) { $_SESSION['user'] = $_GET['set']; }
echo "user=", $seen;
"#;

struct Web {
    engine: WebEngine,
    name: &'static str,
    ip: &'static str,
    state: PathBuf,
}

impl Web {
    fn start(dir: &Path, name: &'static str, ip: &'static str) -> Web {
        let mut options = BTreeMap::new();
        for (k, v) in [
            ("http_port", "0"),
            ("https_port", "0"),
            ("sessions_port", "0"),
        ] {
            options.insert(k.to_string(), v.to_string());
        }
        options.insert("sessions_wait_ms".to_string(), WAIT.as_millis().to_string());
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
        let engine = WebEngine::start(&ctx).unwrap();
        for (domain, file, body) in [(SHOP, "login.php", LOGIN), (OTHER, "peek.php", PEEK)] {
            let rel = state.join("content").join(domain).join("releases/r1");
            std::fs::create_dir_all(&rel).unwrap();
            std::fs::write(rel.join(file), body).unwrap();
            let link = state.join("content").join(domain).join("current");
            if !link.exists() {
                std::os::unix::fs::symlink("releases/r1", link).unwrap();
            }
        }
        Web {
            engine,
            name,
            ip,
            state,
        }
    }

    fn peer(&self) -> WebPeer {
        WebPeer {
            name: self.name.into(),
            address: self
                .engine
                .sessions()
                .expect("the session store runs (root, php-redis)")
                .peer_addr()
                .expect("replication port")
                .to_string(),
        }
    }

    async fn apply(&mut self, peers: Vec<WebPeer>) {
        let mut shop = site(SHOP);
        shop.php = true;
        let mut other = site(OTHER);
        other.php = true;
        let cfg = WebConfig {
            sites: vec![shop, other]
                .into_iter()
                .map(std::sync::Arc::new)
                .collect(),
            files_origin: None,
            peers,
            acme_challenges: Vec::new(),
        };
        self.engine.apply(&RoleConfig::Web(cfg)).await.unwrap();
    }

    /// A request to `host` through this server, with the cookie jar `jar`.
    async fn request(&self, host: &str, path: &str, jar: &Path, extra: &[&str]) -> common::Got {
        let port = self.engine.http_addr().port();
        let jar = jar.to_str().unwrap();
        let mut a = args(&[
            "--resolve",
            &format!("{host}:{port}:{}", self.ip),
            "-c",
            jar,
            "-b",
            jar,
        ]);
        a.extend(args(extra));
        a.push(format!("http://{host}:{port}{path}"));
        curl(a).await
    }

    async fn user(&self, jar: &Path) -> String {
        let g = self.request(SHOP, "/login.php", jar, &[]).await;
        assert_eq!(g.status, 200, "{g:?}");
        g.text()
    }
}

/// The session id curl keeps for `host` in `jar`.
fn session_id(jar: &Path) -> String {
    std::fs::read_to_string(jar)
        .unwrap()
        .lines()
        .find(|l| l.contains("PHPSESSID"))
        .and_then(|l| l.split('\t').next_back())
        .expect("a PHPSESSID cookie")
        .to_string()
}

async fn login(w: &Web, jar: &Path, user: &str) -> Duration {
    let t = Instant::now();
    let g = w
        .request(SHOP, "/login.php", jar, &["-d", &format!("user={user}")])
        .await;
    let took = t.elapsed();
    assert_eq!((g.status, g.text()), (200, format!("user={user}")), "{g:?}");
    took
}

/// Sends a replication write as `cert_dir`'s server to `to` with curl (`-k`: agent
/// certificates name no address; the client certificate is what is checked).
fn post_write(cert_dir: &Path, to: &str, body: &[u8]) -> String {
    let id = identity_paths(cert_dir);
    let file = cert_dir.join("body");
    std::fs::write(&file, body).unwrap();
    let out = std::process::Command::new("curl")
        .args([
            "-sS",
            "-k",
            "-o",
            "/dev/null",
            "-w",
            "%{http_code}",
            "--max-time",
            "10",
        ])
        .arg("--cert")
        .arg(&id.cert)
        .arg("--key")
        .arg(&id.key)
        .arg("--data-binary")
        .arg(format!("@{}", file.display()))
        .arg(format!("https://{to}/v1/sessions/apply"))
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_login_on_one_server_holds_on_the_other_and_never_leaks_to_another_site() {
    role_web::fpm::find_binary().expect("php-fpm must be installed (apt-get install php-fpm)");
    let _ = tracing_subscriber::fmt()
        .with_env_filter("role_web=info")
        .with_test_writer()
        .try_init();
    let tmp = tempfile::tempdir().unwrap();
    let pki = Pki::new();
    for name in ["web-a", "web-b", "web-x"] {
        pki.identity(&tmp.path().join(name).join("tls"), name);
    }
    let mut a = Web::start(tmp.path(), "web-a", "127.0.16.2");
    let mut b = Web::start(tmp.path(), "web-b", "127.0.16.3");
    let (pa, pb) = (a.peer(), b.peer());
    a.apply(vec![pb.clone()]).await;
    b.apply(vec![pa.clone()]).await;
    // A process that is no site's (this test runs as root) gets no namespace.
    {
        use std::io::{Read, Write};
        let sock = a.engine.sessions().unwrap().socket().to_path_buf();
        let mut c = std::os::unix::net::UnixStream::connect(sock).unwrap();
        c.write_all(b"*2\r\n$3\r\nGET\r\n$1\r\nk\r\n").unwrap();
        let mut answer = String::new();
        c.read_to_string(&mut answer).unwrap();
        assert!(answer.starts_with("-NOPERM uid 0 "), "{answer}");
    }
    let health = a.engine.health().detail;
    assert!(
        health.contains("1 peers, replication port 127.0.16.2:"),
        "{health}"
    );

    // Log in through A, carry on through B (and back).
    let jar = tmp.path().join("alice.jar");
    let took = login(&a, &jar, "alice").await;
    assert_eq!(b.user(&jar).await, "user=alice");
    assert_eq!(a.user(&jar).await, "user=alice");
    let sid = session_id(&jar);
    eprintln!("login through A answered in {took:?}; B sees it");
    // A change made through B is seen through A.
    login(&b, &jar, "alice2").await;
    assert_eq!(a.user(&jar).await, "user=alice2");
    assert_eq!(session_id(&jar), sid);

    // Another site with the same session id, through either server: nothing to
    // read, and what it writes stays in its own namespace.
    let mallory = tmp.path().join("mallory.jar");
    for (w, set) in [(&b, ""), (&a, "&set=mallory")] {
        let g = w
            .request(OTHER, &format!("/peek.php?sid={sid}{set}"), &mallory, &[])
            .await;
        assert_eq!((g.status, g.text().as_str()), (200, "user=nobody"), "{g:?}");
    }
    assert_eq!(a.user(&jar).await, "user=alice2");
    assert_eq!(b.user(&jar).await, "user=alice2");
    // (the other site does see its own write under that id, on both servers)
    let g = b
        .request(OTHER, &format!("/peek.php?sid={sid}"), &mallory, &[])
        .await;
    assert_eq!(g.text(), "user=mallory");

    // A server outside the cluster cannot write; a peer cannot write to a site
    // this server does not have.
    let mut w = Vec::new();
    role_web::sessions::command::Write::Del(vec![format!("PHPREDIS_SESSION:{sid}").into_bytes()])
        .encode(SHOP, &mut w);
    let x = tmp.path().join("web-x/tls");
    assert_eq!(post_write(&x, &pa.address, &w), "403");
    let mut elsewhere = Vec::new();
    role_web::sessions::command::Write::Del(vec![b"k".to_vec()])
        .encode("nosuch.example", &mut elsewhere);
    let bdir = tmp.path().join("web-b/tls");
    assert_eq!(post_write(&bdir, &pa.address, &elsewhere), "404");
    assert_eq!(
        post_write(&bdir, &pa.address, b"*1\r\n$3\r\nGET\r\n"),
        "400"
    );
    assert_eq!(a.user(&jar).await, "user=alice2");

    // A peer that accepts connections but never answers: a login waits for it at
    // most the bound, the next ones not at all, and B still gets every write.
    let silent = std::net::TcpListener::bind("127.0.16.4:0").unwrap();
    let dead = WebPeer {
        name: "web-dead".into(),
        address: silent.local_addr().unwrap().to_string(),
    };
    a.apply(vec![dead.clone(), pb.clone()]).await;
    let bob = tmp.path().join("bob.jar");
    let first = login(&a, &bob, "bob").await;
    assert!(
        first < WAIT + Duration::from_secs(3),
        "first login took {first:?}"
    );
    assert_eq!(b.user(&bob).await, "user=bob");
    let carol = tmp.path().join("carol.jar");
    let next = login(&a, &carol, "carol").await;
    assert!(
        next < WAIT,
        "a login waited for the dead peer again: {next:?}"
    );
    assert_eq!(b.user(&carol).await, "user=carol");
    eprintln!("with a silent peer: first login {first:?}, the next {next:?} (bound {WAIT:?})");
    drop(silent);

    // B restarts empty and fetches the sessions from A.
    b.engine.shutdown().await;
    drop(b);
    let mut b = Web::start(tmp.path(), "web-b", "127.0.16.3");
    let pb2 = b.peer();
    b.apply(vec![pa.clone()]).await;
    a.apply(vec![pb2]).await;
    let t = Instant::now();
    loop {
        if b.user(&jar).await == "user=alice2" {
            break;
        }
        if t.elapsed() > Duration::from_secs(10) {
            let held = (
                a.engine.sessions().unwrap().len(),
                b.engine.sessions().unwrap().len(),
            );
            panic!(
                "no snapshot on B: A says {}, B {}, sessions held {held:?}",
                a.user(&jar).await,
                b.user(&jar).await
            );
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(b.user(&carol).await, "user=carol");
    login(&b, &carol, "carol2").await;
    assert_eq!(a.user(&carol).await, "user=carol2");

    // Sessions of a site are not files in its temp dir any more.
    let tmp_sessions = std::fs::read_dir(a.state.join("php/tmp").join(SHOP))
        .map(|d| {
            d.flatten()
                .filter(|e| e.file_name().to_string_lossy().starts_with("sess_"))
                .count()
        })
        .unwrap_or(0);
    assert_eq!(tmp_sessions, 0);

    a.engine.shutdown().await;
    b.engine.shutdown().await;
}
