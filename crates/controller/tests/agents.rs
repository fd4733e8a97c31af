//! The controller side of the agent protocol end to end: a real controller
//! in-process over HTTPS (port 0) and agent-protocol clients made with reqwest and
//! real client identities (rcgen key + CSR, join, mutual TLS).

#![allow(clippy::unwrap_used)]

mod common;

use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{csr, Api, Server};
use proto::agent_v1::{DesiredConfig, RoleConfig, CONFIG_PATH, HEARTBEAT_PATH, JOIN_PATH};
use reqwest::StatusCode;
use serde_json::{json, Value};

/// Fast health timings and a short blocking-query wait.
async fn start() -> Server {
    Server::start_with(|c| {
        c.health.heartbeat_interval_ms = 100;
        c.health.suspect_after = 3;
        c.health.probe_timeout_ms = 200;
        c.agents.config_wait_ms = 1500;
        c.agents.resync_interval_ms = 200;
    })
    .await
}

/// An agent identity after a successful join.
#[derive(Clone)]
struct Agent {
    name: String,
    url: String,
    http: reqwest::Client,
    applied: Arc<AtomicI64>,
}

/// A key and a CSR (PEM) for `name`.
fn join_body(token: &str, name: &str, csr_pem: &str, ip: &str) -> Value {
    json!({
        "token": token,
        "csr_pem": csr_pem,
        "name": name,
        "hostname": format!("{name}.hosting.example"),
        "addresses": [ip],
        "country": "DE",
        "region": "eu-test",
        "hardware": "test",
    })
}

/// POST the join call without any bearer token.
async fn join_raw(srv: &Server, body: Value) -> common::Resp {
    srv.client(None).post(JOIN_PATH, body).await
}

/// A mutual-TLS client presenting `cert_pem` + `key_pem`, trusting `ca`.
fn mtls(ca: &[u8], cert_pem: &str, key_pem: &str) -> reqwest::Client {
    let identity = reqwest::Identity::from_pem(format!("{cert_pem}{key_pem}").as_bytes()).unwrap();
    reqwest::Client::builder()
        .use_rustls_tls()
        .add_root_certificate(reqwest::Certificate::from_pem(ca).unwrap())
        .identity(identity)
        .build()
        .unwrap()
}

async fn join(srv: &Server, token: &str, name: &str, ip: &str) -> Agent {
    let (key, csr_pem) = csr(name);
    let r = join_raw(srv, join_body(token, name, &csr_pem, ip))
        .await
        .expect(200);
    assert_eq!(r["server"], name);
    let ca = r["ca_pem"].as_str().unwrap();
    assert_eq!(ca.as_bytes(), srv.ca.as_slice());
    Agent {
        name: name.to_owned(),
        url: srv.url.clone(),
        http: mtls(
            ca.as_bytes(),
            r["cert_pem"].as_str().unwrap(),
            &key.serialize_pem(),
        ),
        applied: Arc::new(AtomicI64::new(0)),
    }
}

async fn token(admin: &Api, cluster: &str) -> String {
    admin
        .post("/v1/join-tokens", json!({"cluster": cluster}))
        .await
        .expect(201)["token"]
        .as_str()
        .unwrap()
        .to_owned()
}

impl Agent {
    /// The blocking config query: status and the config on 200.
    async fn config(&self, after: i64) -> (StatusCode, Option<DesiredConfig>) {
        let res = self
            .http
            .get(format!("{}{CONFIG_PATH}?after={after}", self.url))
            .send()
            .await
            .unwrap();
        let status = res.status();
        let bytes = res.bytes().await.unwrap();
        let doc = (status == StatusCode::OK).then(|| serde_json::from_slice(&bytes).unwrap());
        (status, doc)
    }

    async fn heartbeat(&self, probe_port: u16) -> StatusCode {
        self.http
            .post(format!("{}{HEARTBEAT_PATH}", self.url))
            .json(&json!({
                "applied_revision": self.applied.load(Ordering::Relaxed),
                "engines": [{"name": "web", "state": "not_built", "detail": "test"}],
                "agent_version": "test",
                "probe_port": probe_port,
            }))
            .send()
            .await
            .unwrap()
            .status()
    }

    /// Send heartbeats every 100 ms while `on` is set, until the test ends.
    fn heartbeats(&self, probe_port: u16, on: Arc<AtomicBool>) {
        let me = self.clone();
        tokio::spawn(async move {
            loop {
                if on.load(Ordering::Relaxed) {
                    let _ = me.heartbeat(probe_port).await;
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        });
    }
}

/// A port nobody listens on (bound and released).
async fn closed_port() -> u16 {
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    l.local_addr().unwrap().port()
}

async fn server_view(admin: &Api, name: &str) -> Value {
    admin.get(&format!("/v1/servers/{name}")).await.expect(200)
}

/// Poll until `f` holds (or panic after `secs`).
async fn until<F, Fut>(secs: u64, what: &str, mut f: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let end = Instant::now() + Duration::from_secs(secs);
    while Instant::now() < end {
        if f().await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("timed out waiting for {what}");
}

async fn events(admin: &Api, action: &str) -> Vec<Value> {
    admin
        .list_all("/v1/events?limit=1000")
        .await
        .into_iter()
        .filter(|e| e["action"] == action)
        .collect()
}

/// Clusters for every domain role; `web-a` is the default web cluster.
async fn clusters(admin: &Api) {
    for (name, role, default) in [
        ("web-a", "web", true),
        ("web-b", "web", false),
        ("dns-1", "dns", true),
        ("mail-1", "mail", true),
        ("files-1", "files", true),
    ] {
        admin
            .post(
                "/v1/clusters",
                json!({"name": name, "role": role, "default": default}),
            )
            .await
            .expect(201);
    }
    admin
        .post("/v1/customers", json!({"name": "acme"}))
        .await
        .expect(201);
}

async fn site(admin: &Api, domain: &str, web: &str, mode: &str) -> Value {
    admin
        .post(
            "/v1/domains",
            json!({"name": domain, "customer": "acme", "clusters": {"web": web}}),
        )
        .await
        .expect(201);
    admin
        .post("/v1/sites", json!({"domain": domain, "mode": mode}))
        .await
        .expect(201)
}

#[tokio::test]
async fn join_tokens_identity_and_refusals() {
    let srv = start().await;
    let admin = srv.admin();
    clusters(&admin).await;

    // Tokens: admin only, shown once, listed without secrets, bounded expiry.
    let acme = common::customer(&srv, &admin, "bob", json!({})).await;
    acme.post("/v1/join-tokens", json!({"cluster": "web-a"}))
        .await
        .error(403, "forbidden");
    admin
        .post(
            "/v1/join-tokens",
            json!({"cluster": "web-a", "expires_in_minutes": 10081}),
        )
        .await
        .invalid("expires_in_minutes");
    admin
        .post("/v1/join-tokens", json!({"cluster": "nope"}))
        .await
        .invalid("cluster");
    let created = admin
        .post(
            "/v1/join-tokens",
            json!({"cluster": "web-a", "expires_in_minutes": 5}),
        )
        .await
        .expect(201);
    let t1 = created["token"].as_str().unwrap().to_owned();
    assert!(t1.starts_with("hpj_"));
    let listed = admin.list_all("/v1/join-tokens").await;
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0]["cluster"], "web-a");
    assert_eq!(listed[0]["expired"], false);
    assert!(listed[0].get("token").is_none(), "{listed:?}");

    // Bad fields are refused before the token is looked at (and it stays unused).
    let (_, csr1) = csr("web-1");
    join_raw(&srv, join_body(&t1, "Web 1", &csr1, "127.0.0.1"))
        .await
        .invalid("name");
    join_raw(&srv, join_body(&t1, "web-1", &csr1, "not-an-ip"))
        .await
        .invalid("addresses[0]");
    join_raw(&srv, join_body(&t1, "web-1", "garbage", "127.0.0.1"))
        .await
        .invalid("csr_pem");

    // Join works once.
    let a1 = join(&srv, &t1, "web-1", "127.0.0.1").await;
    let body = join_raw(&srv, join_body(&t1, "web-2", &csr("web-2").1, "127.0.0.1"))
        .await
        .error(401, "unauthorized");
    assert_eq!(body["rule"], "unknown_or_used");
    assert!(admin.list_all("/v1/join-tokens").await.is_empty());
    let view = server_view(&admin, "web-1").await;
    assert_eq!(
        (view["cluster"].as_str(), view["role"].as_str()),
        (Some("web-a"), Some("web"))
    );
    assert_eq!(view["region"], "eu-test");

    // Forged: a right-looking token with a wrong secret, and garbage.
    let t2 = token(&admin, "web-a").await;
    let forged = format!("{}_{}", t2.rsplit_once('_').unwrap().0, "A".repeat(43));
    let body = join_raw(
        &srv,
        join_body(&forged, "web-2", &csr("web-2").1, "127.0.0.1"),
    )
    .await
    .error(401, "unauthorized");
    assert_eq!(body["rule"], "forged");
    join_raw(
        &srv,
        join_body("hpj_nonsense", "web-2", &csr("web-2").1, "127.0.0.1"),
    )
    .await
    .error(401, "unauthorized");

    // Expired: age the token in the store beside the controller.
    let store = store::Store::open_url(&srv.store_url).await.unwrap();
    let public_id = t2.strip_prefix("hpj_").unwrap().split('_').next().unwrap();
    let mut tx = store
        .begin(store::Actor {
            account: None,
            label: "test".into(),
        })
        .await
        .unwrap();
    let mut t = tx
        .get_by_name::<model::entity::JoinToken>(public_id)
        .await
        .unwrap()
        .unwrap();
    t.data.expires_at -= 3600;
    tx.update(t.meta.id, &t.meta.name, t.data).await.unwrap();
    tx.commit().await.unwrap();
    store.close().await;
    assert_eq!(admin.list_all("/v1/join-tokens").await[0]["expired"], true);
    let body = join_raw(&srv, join_body(&t2, "web-2", &csr("web-2").1, "127.0.0.1"))
        .await
        .error(401, "unauthorized");
    assert_eq!(body["rule"], "expired");
    let reasons: Vec<String> = events(&admin, "join.refused")
        .await
        .iter()
        .map(|e| e["detail"]["reason"].as_str().unwrap().to_owned())
        .collect();
    for r in ["unknown_or_used", "forged", "expired"] {
        assert!(
            reasons.iter().any(|x| x == r),
            "{r} missing from {reasons:?}"
        );
    }
    assert_eq!(events(&admin, "server.join").await.len(), 1);

    // A second join under a joined name: 409, and the token is not consumed.
    let t3 = token(&admin, "web-a").await;
    join_raw(&srv, join_body(&t3, "web-1", &csr("web-1").1, "127.0.0.1"))
        .await
        .error(409, "conflict");
    // A server pre-registered by an admin is claimed by its agent.
    admin
        .post(
            "/v1/servers",
            json!({"name": "web-9", "cluster": "web-a", "hostname": "old.example",
                   "addresses": ["127.0.0.9"], "country": "DE"}),
        )
        .await
        .expect(201);
    let a9 = join(&srv, &t3, "web-9", "127.0.0.1").await;
    assert_eq!(
        server_view(&admin, "web-9").await["hostname"],
        "web-9.hosting.example"
    );

    // The agent's certificate works on agent endpoints, and nothing else does.
    assert_eq!(a1.config(0).await.0, StatusCode::OK);
    assert_eq!(a1.heartbeat(1).await, StatusCode::OK);
    let plain = srv.client(None);
    plain
        .get(&format!("{CONFIG_PATH}?after=0"))
        .await
        .error(401, "unauthorized");
    acme.get(&format!("{CONFIG_PATH}?after=0"))
        .await
        .error(401, "unauthorized");
    admin
        .get(&format!("{CONFIG_PATH}?after=0"))
        .await
        .error(401, "unauthorized");
    admin
        .post(
            HEARTBEAT_PATH,
            json!({"applied_revision": 0, "engines": [], "agent_version": "x"}),
        )
        .await
        .error(401, "unauthorized");
    // ... and the agent's certificate is no API credential.
    let res = a1
        .http
        .get(format!("{}/v1/status", srv.url))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);

    // A certificate from another CA fails the TLS handshake.
    let other = controller::ca::Ca::generate("someone else").unwrap();
    let foreign = other.sign_client_cert(&["web-1".into()]).unwrap();
    let intruder = mtls(&srv.ca, &foreign.cert_pem, &foreign.key_pem);
    let err = intruder
        .get(format!("{}{CONFIG_PATH}?after=0", srv.url))
        .send()
        .await;
    assert!(
        err.is_err(),
        "a foreign certificate must not connect: {err:?}"
    );

    // Reset and delete void the certificates (403).
    admin
        .post("/v1/servers/web-9/reset-agent", json!({}))
        .await
        .expect(200);
    assert_eq!(a9.config(0).await.0, StatusCode::FORBIDDEN);
    admin.delete("/v1/servers/web-1").await.expect(204);
    assert_eq!(a1.config(0).await.0, StatusCode::FORBIDDEN);
    assert_eq!(a1.heartbeat(1).await, StatusCode::FORBIDDEN);
    srv.stop().await;
}

#[tokio::test]
async fn blocking_config_query_and_per_server_revisions() {
    let srv = start().await;
    let admin = srv.admin();
    clusters(&admin).await;
    let a1 = join(&srv, &token(&admin, "web-a").await, "a1", "127.0.0.1").await;
    let a2 = join(&srv, &token(&admin, "web-a").await, "a2", "127.0.0.1").await;
    let b1 = join(&srv, &token(&admin, "web-b").await, "b1", "127.0.0.1").await;
    // Joined servers are expected to heartbeat (a silent one goes suspect, then down).
    let port = closed_port().await;
    for a in [&a1, &a2, &b1] {
        a.heartbeats(port, Arc::new(AtomicBool::new(true)));
    }

    // after=0 answers at once with the whole config.
    let t = Instant::now();
    let (status, doc) = a1.config(0).await;
    assert_eq!(status, StatusCode::OK);
    assert!(t.elapsed() < Duration::from_secs(1), "{:?}", t.elapsed());
    let doc = doc.unwrap();
    assert_eq!(doc.format, 1);
    assert_eq!(doc.server.name, a1.name);
    assert_eq!(doc.server.cluster, "web-a");
    let RoleConfig::Web(web) = &doc.role else {
        panic!("{doc:?}")
    };
    assert!(web.sites.is_empty());
    let ra = doc.revision;
    let rb = b1.config(0).await.1.unwrap().revision;

    // Nothing changes: blocks for the wait, then 304.
    let t = Instant::now();
    let (status, _) = a1.config(ra).await;
    assert_eq!(status, StatusCode::NOT_MODIFIED);
    assert!(
        t.elapsed() >= Duration::from_millis(1400),
        "{:?}",
        t.elapsed()
    );

    // A change to a web-a site: a waiting query returns promptly with it.
    let waiter = {
        let a1 = a1.clone();
        tokio::spawn(async move {
            let t = Instant::now();
            let r = a1.config(ra).await;
            (r, t.elapsed())
        })
    };
    tokio::time::sleep(Duration::from_millis(300)).await;
    let changed_at = Instant::now();
    site(&admin, "a-site.example", "web-a", "all").await;
    let ((status, doc), _) = waiter.await.unwrap();
    let latency = changed_at.elapsed();
    assert_eq!(status, StatusCode::OK);
    assert!(latency < Duration::from_millis(1000), "{latency:?}");
    let doc = doc.unwrap();
    assert!(doc.revision > ra);
    let RoleConfig::Web(web) = &doc.role else {
        panic!()
    };
    assert_eq!(web.sites.len(), 1);
    assert_eq!(web.sites[0].domain, "a-site.example");
    assert!(web.sites[0].active);
    // a2 got it too; b1 kept its revision.
    let d2 = a2.config(0).await.1.unwrap();
    assert!(d2.revision > ra);
    let RoleConfig::Web(w2) = &d2.role else {
        panic!()
    };
    assert_eq!(w2.sites.len(), 1);
    let db = b1.config(0).await.1.unwrap();
    assert_eq!(db.revision, rb, "web-b is not affected");
    let (status, _) = b1.config(rb).await;
    assert_eq!(status, StatusCode::NOT_MODIFIED);

    // The site's certificate comes from the key task, off the build path: a later
    // revision of web-a's configs carries it.
    for agent in [&a1, &a2] {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let doc = agent.config(0).await.1.unwrap();
            let RoleConfig::Web(w) = &doc.role else {
                panic!()
            };
            if w.sites.iter().all(|s| s.tls.is_some()) {
                break;
            }
            assert!(Instant::now() < deadline, "no certificate: {doc:?}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    let d2 = a2.config(0).await.1.unwrap();

    // A change on web-b reaches b1 only.
    let ra_now = a1.config(0).await.1.unwrap().revision;
    site(&admin, "b-site.example", "web-b", "single").await;
    let (status, doc) = b1.config(rb).await;
    assert_eq!(status, StatusCode::OK);
    let RoleConfig::Web(wb) = &doc.unwrap().role else {
        panic!()
    };
    assert_eq!(wb.sites[0].domain, "b-site.example");
    assert!(
        wb.sites[0].active,
        "the only server of web-b serves the single site"
    );
    assert_eq!(a1.config(0).await.1.unwrap().revision, ra_now);
    assert_eq!(a2.config(0).await.1.unwrap().revision, d2.revision);
    // The server listing shows the config revisions.
    let v = server_view(&admin, "b1").await;
    assert!(v["config_revision"].as_i64().unwrap() > rb, "{v}");
    srv.stop().await;
}

#[tokio::test]
async fn health_failover_drain_and_recovery() {
    let srv = start().await;
    let admin = srv.admin();
    clusters(&admin).await;
    let w1 = join(&srv, &token(&admin, "web-a").await, "w1", "127.0.0.1").await;
    let w2 = join(&srv, &token(&admin, "web-a").await, "w2", "127.0.0.1").await;
    let port = closed_port().await;
    let (on1, on2) = (
        Arc::new(AtomicBool::new(true)),
        Arc::new(AtomicBool::new(true)),
    );
    w1.applied.store(7, Ordering::Relaxed);
    w1.heartbeats(port, on1.clone());
    w2.heartbeats(port, on2.clone());
    for name in ["w1", "w2"] {
        until(5, &format!("{name} up"), || async {
            server_view(&admin, name).await["health"] == "up"
        })
        .await;
    }
    let v = server_view(&admin, "w1").await;
    assert_eq!(v["applied_revision"], 7);
    assert!(v["last_heartbeat"].is_string());

    // A single site goes on the least-loaded healthy server (w1: lowest id).
    let s = site(&admin, "shop.example", "web-a", "single").await;
    assert_eq!(s["active_server"], "w1");
    let active = |admin: Api| async move {
        admin.get("/v1/sites/shop.example").await.expect(200)["active_server"].clone()
    };

    // w1 stops: suspect, then down (its probe port is closed), and the site moves.
    on1.store(false, Ordering::Relaxed);
    until(5, "w1 down", || async {
        server_view(&admin, "w1").await["health"] == "down"
    })
    .await;
    until(5, "site moved to w2", || async {
        active(admin.clone()).await == "w2"
    })
    .await;
    let health: Vec<(String, String, String)> = events(&admin, "server.health")
        .await
        .iter()
        .map(|e| {
            (
                e["object"].as_str().unwrap().to_owned(),
                e["detail"]["from"].as_str().unwrap().to_owned(),
                e["detail"]["to"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    let mut w1_path: Vec<(&str, &str)> = health
        .iter()
        .filter(|(n, _, _)| n == "w1")
        .map(|(_, f, t)| (f.as_str(), t.as_str()))
        .collect();
    // On a loaded machine a late heartbeat may make w1 suspect and then up again
    // before it is killed: that detour is legitimate; the path must end in the
    // kill's suspect → down.
    while let Some(i) = w1_path
        .windows(2)
        .position(|w| w == [("up", "suspect"), ("suspect", "up")])
    {
        w1_path.drain(i..i + 2);
    }
    assert_eq!(
        w1_path,
        vec![("unknown", "up"), ("up", "suspect"), ("suspect", "down")]
    );
    let moves = events(&admin, "site.move").await;
    assert_eq!(moves.len(), 1, "{moves:?}");
    assert_eq!(moves[0]["actor"], "scheduler");
    assert_eq!(moves[0]["detail"]["from"], "w1");
    assert_eq!(moves[0]["detail"]["to"], "w2");
    // w2's desired config now has the site active (once the build after the move
    // has run), w1's inactive.
    until(5, "w2's config has the site active", || async {
        let RoleConfig::Web(c2) = w2.config(0).await.1.unwrap().role else {
            panic!()
        };
        c2.sites[0].active
    })
    .await;
    let RoleConfig::Web(c1) = w1.config(0).await.1.unwrap().role else {
        panic!()
    };
    assert!(!c1.sites[0].active);

    // w1 comes back: up again; the site stays where it is.
    on1.store(true, Ordering::Relaxed);
    until(5, "w1 up again", || async {
        server_view(&admin, "w1").await["health"] == "up"
    })
    .await;
    until(5, "recovery event", || async {
        events(&admin, "server.health").await.iter().any(|e| {
            e["object"] == "w1" && e["detail"]["from"] == "down" && e["detail"]["to"] == "up"
        })
    })
    .await;
    assert_eq!(active(admin.clone()).await, "w2");

    // Drain w2: the site moves to w1; a drained server takes no new single sites.
    let v = admin
        .post("/v1/servers/w2/drain", json!({}))
        .await
        .expect(200);
    assert_eq!(v["drained"], true);
    assert_eq!(active(admin.clone()).await, "w1");
    let s2 = site(&admin, "blog.example", "web-a", "single").await;
    assert_eq!(s2["active_server"], "w1");
    // Undrain w2 and drain w1: everything goes to w2 (eligible again).
    admin
        .post("/v1/servers/w2/undrain", json!({}))
        .await
        .expect(200);
    admin
        .post("/v1/servers/w1/drain", json!({}))
        .await
        .expect(200);
    assert_eq!(active(admin.clone()).await, "w2");
    assert_eq!(
        admin.get("/v1/sites/blog.example").await.expect(200)["active_server"],
        "w2"
    );
    // With w1 drained and w2 down, the site has nowhere to go: it stays, with a warning.
    on2.store(false, Ordering::Relaxed);
    until(5, "w2 down", || async {
        server_view(&admin, "w2").await["health"] == "down"
    })
    .await;
    until(5, "placement warning", || async {
        !events(&admin, "placement.warning").await.is_empty()
    })
    .await;
    assert_eq!(active(admin.clone()).await, "w2");
    srv.stop().await;
}

#[tokio::test]
async fn suspect_stays_suspect_while_its_service_answers() {
    let srv = start().await;
    let admin = srv.admin();
    clusters(&admin).await;
    let w = join(&srv, &token(&admin, "web-a").await, "w1", "127.0.0.1").await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move { while let Ok((_conn, _)) = listener.accept().await {} });
    assert_eq!(w.heartbeat(port).await, StatusCode::OK);
    until(5, "up", || async {
        server_view(&admin, "w1").await["health"] == "up"
    })
    .await;
    until(5, "suspect", || async {
        server_view(&admin, "w1").await["health"] == "suspect"
    })
    .await;
    // Many probe rounds later it is still only suspect.
    tokio::time::sleep(Duration::from_millis(800)).await;
    assert_eq!(server_view(&admin, "w1").await["health"], "suspect");
    assert_eq!(w.heartbeat(port).await, StatusCode::OK);
    assert_eq!(server_view(&admin, "w1").await["health"], "up");
    srv.stop().await;
}

/// Objects an engine could not apply (issue 12): each new one is an event
/// `server.object_rejected` naming it, each one gone an event `server.object_applied`.
#[tokio::test]
async fn rejected_objects_become_events() {
    let srv = start().await;
    let admin = srv.admin();
    clusters(&admin).await;
    let w = join(&srv, &token(&admin, "web-a").await, "w1", "127.0.0.1").await;
    let send = |rejected: Value| {
        let w = w.clone();
        async move {
            w.http
                .post(format!("{}{HEARTBEAT_PATH}", w.url))
                .json(&json!({
                    "applied_revision": 1,
                    "engines": [{"name": "web", "state": "degraded", "detail": "1 object not applied"}],
                    "agent_version": "test",
                    "rejected": rejected,
                }))
                .send()
                .await
                .unwrap()
                .status()
        }
    };
    let bad = json!([{"object": "site a.example", "reason": "bad alias"}]);
    assert_eq!(send(bad.clone()).await, StatusCode::OK);
    assert_eq!(send(bad).await, StatusCode::OK);
    until(5, "rejected event", || async {
        !events(&admin, "server.object_rejected").await.is_empty()
    })
    .await;
    assert_eq!(send(json!([])).await, StatusCode::OK);
    until(5, "applied event", || async {
        !events(&admin, "server.object_applied").await.is_empty()
    })
    .await;
    let r = events(&admin, "server.object_rejected").await;
    assert_eq!(r.len(), 1, "once per change, not per heartbeat: {r:?}");
    assert_eq!(r[0]["object"], "w1", "{}", r[0]);
    assert_eq!(r[0]["detail"]["object"], "site a.example", "{}", r[0]);
    assert_eq!(r[0]["detail"]["reason"], "bad alias", "{}", r[0]);
    let a = events(&admin, "server.object_applied").await;
    assert_eq!(a[0]["detail"]["object"], "site a.example", "{}", a[0]);
    let many: Vec<Value> = (0..300)
        .map(|i| json!({"object": format!("site {i}.example"), "reason": "x"}))
        .collect();
    assert_eq!(send(json!(many)).await, StatusCode::UNPROCESSABLE_ENTITY);
    srv.stop().await;
}
