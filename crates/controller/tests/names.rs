//! Name ownership against a real controller: per registrable domain, public
//! suffixes, the platform's zone, mixed-script lookalikes, the TXT challenge through
//! a real DNS server, admin transfers, and the conflict report at start.

#![allow(clippy::unwrap_used)]

mod common;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use common::{customer, default_clusters, Api, Server};
use hickory_proto::op::{Message, MessageType, OpCode, ResponseCode};
use hickory_proto::rr::rdata::TXT;
use hickory_proto::rr::{Name, RData, Record, RecordType};
use serde_json::json;

type TxtRecords = Arc<Mutex<HashMap<String, Vec<String>>>>;

/// A tiny authoritative DNS server on 127.0.0.1 (UDP) answering TXT queries from
/// `records`; NXDOMAIN for other names.
async fn txt_server() -> (SocketAddr, TxtRecords) {
    let sock = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let addr = sock.local_addr().unwrap();
    let records: TxtRecords = Arc::default();
    let r = records.clone();
    tokio::spawn(async move {
        let mut buf = vec![0u8; 4096];
        loop {
            let Ok((n, peer)) = sock.recv_from(&mut buf).await else {
                return;
            };
            let Ok(q) = Message::from_vec(&buf[..n]) else {
                continue;
            };
            let mut resp = Message::new(q.metadata.id, MessageType::Response, OpCode::Query);
            resp.metadata.authoritative = true;
            resp.metadata.recursion_desired = q.metadata.recursion_desired;
            let Some(query) = q.queries.first().cloned() else {
                continue;
            };
            let key = query.name().to_ascii().trim_end_matches('.').to_lowercase();
            let values = r.lock().unwrap().get(&key).cloned();
            match values {
                Some(vals) if query.query_type() == RecordType::TXT => {
                    for v in vals {
                        resp.add_answer(Record::from_rdata(
                            Name::from_ascii(&key).unwrap(),
                            60,
                            RData::TXT(TXT::new(vec![v])),
                        ));
                    }
                }
                Some(_) => {}
                None => resp.metadata.response_code = ResponseCode::NXDomain,
            }
            resp.add_query(query);
            let _ = sock.send_to(&resp.to_vec().unwrap(), peer).await;
        }
    });
    (addr, records)
}

async fn setup(server: &Server) -> (Api, Api, Api) {
    let admin = server.admin();
    default_clusters(&admin).await;
    let alice = customer(server, &admin, "alice", json!({})).await;
    let bob = customer(server, &admin, "bob", json!({})).await;
    (admin, alice, bob)
}

#[tokio::test]
async fn another_customers_names_cannot_be_taken() {
    let server = Server::start().await;
    let (admin, alice, bob) = setup(&server).await;
    alice
        .post("/v1/domains", json!({"name": "example.co.uk"}))
        .await
        .expect(201);
    // The www hijack: bob adds a name below alice's domain.
    let b = bob
        .post("/v1/domains", json!({"name": "www.example.co.uk"}))
        .await
        .error(409, "conflict");
    assert_eq!(b["field"], "name", "{b}");
    assert_eq!(b["rule"], "owned_by_another_account", "{b}");
    let msg = b["message"].as_str().unwrap();
    assert!(msg.contains("_hostplane-challenge.example.co.uk"), "{msg}");
    // Deeper names and an admin acting for bob are refused too.
    bob.post("/v1/domains", json!({"name": "a.b.example.co.uk"}))
        .await
        .error(409, "conflict");
    admin
        .post(
            "/v1/domains",
            json!({"name": "shop.example.co.uk", "customer": "bob"}),
        )
        .await
        .error(409, "conflict");
    // Nothing was half-created; alice still adds her own names.
    assert!(bob.names("/v1/domains", "name").await.is_empty());
    alice
        .post("/v1/domains", json!({"name": "www.example.co.uk"}))
        .await
        .expect(201);
    // Another registrable domain under the same suffix is free.
    bob.post("/v1/domains", json!({"name": "other.co.uk"}))
        .await
        .expect(201);
    // A name first added below the registrable domain claims all of it.
    bob.post("/v1/domains", json!({"name": "mail.bob-shop.com"}))
        .await
        .expect(201);
    alice
        .post("/v1/domains", json!({"name": "bob-shop.com"}))
        .await
        .error(409, "conflict");

    // Public suffixes are nobody's.
    for suffix in ["co.uk", "github.io"] {
        let b = alice
            .post("/v1/domains", json!({"name": suffix}))
            .await
            .invalid("name");
        assert_eq!(b["rule"], "public_suffix", "{b}");
        admin
            .post("/v1/domains", json!({"name": suffix, "customer": "alice"}))
            .await
            .invalid("name");
    }
    server.stop().await;
}

#[tokio::test]
async fn platform_zone_and_lookalikes_are_for_admins() {
    let server = Server::start_with(|c| {
        c.names.platform_zones = vec![model::DomainName::new("hostplane-ops.net").unwrap()];
    })
    .await;
    let (admin, alice, _bob) = setup(&server).await;
    admin
        .post(
            "/v1/servers",
            json!({"name": "ns1", "cluster": "dns-1", "hostname": "ns1.platform.example",
                "addresses": ["192.0.2.10"], "country": "GB"}),
        )
        .await
        .expect(201);
    // The zone of the servers' host names, and a configured platform zone.
    for name in [
        "platform.example",
        "mx.platform.example",
        "hostplane-ops.net",
    ] {
        let b = alice
            .post("/v1/domains", json!({"name": name}))
            .await
            .error(403, "forbidden");
        assert_eq!(b["field"], "name", "{b}");
        assert_eq!(b["rule"], "platform_zone", "{b}");
    }
    admin
        .post(
            "/v1/domains",
            json!({"name": "status.platform.example", "customer": "alice"}),
        )
        .await
        .expect(201);

    // Mixed-script lookalike (Cyrillic а in a Latin label): admins only.
    let lookalike = "p\u{430}ypal.com";
    let b = alice
        .post("/v1/domains", json!({"name": lookalike}))
        .await
        .invalid("name");
    assert_eq!(b["rule"], "mixed_script", "{b}");
    // Single-script IDNs stay open to customers.
    alice
        .post("/v1/domains", json!({"name": "bücher.example"}))
        .await
        .expect(201);
    alice
        .post("/v1/domains", json!({"name": "пример.рф"}))
        .await
        .expect(201);
    admin
        .post(
            "/v1/domains",
            json!({"name": lookalike, "customer": "alice"}),
        )
        .await
        .expect(201);
    server.stop().await;
}

#[tokio::test]
async fn control_is_proven_with_a_txt_record() {
    let (dns, records) = txt_server().await;
    let server = Server::start_with(|c| c.names.resolver = Some(dns)).await;
    let (admin, alice, bob) = setup(&server).await;
    alice
        .post("/v1/domains", json!({"name": "example.com"}))
        .await
        .expect(201);
    let ch = bob
        .post("/v1/domain-challenges", json!({"name": "www.example.com"}))
        .await
        .expect(200);
    assert_eq!(ch["registrable"], "example.com");
    assert_eq!(ch["record"], "_hostplane-challenge.example.com");
    assert_eq!(ch["customer"], "bob");
    let token = ch["value"].as_str().unwrap().to_owned();
    // Alice's token differs; customers cannot ask for another's.
    let theirs = alice
        .post("/v1/domain-challenges", json!({"name": "example.com"}))
        .await
        .expect(200);
    assert_ne!(theirs["value"], ch["value"]);
    bob.post(
        "/v1/domain-challenges",
        json!({"name": "example.com", "customer": "alice"}),
    )
    .await
    .error(403, "forbidden");
    // Without the record (NXDOMAIN), then with a wrong value: refused.
    let b = bob
        .post("/v1/domains", json!({"name": "www.example.com"}))
        .await
        .error(409, "conflict");
    assert!(b["message"].as_str().unwrap().contains(&token), "{b}");
    records.lock().unwrap().insert(
        "_hostplane-challenge.example.com".into(),
        vec![theirs["value"].as_str().unwrap().to_owned()],
    );
    bob.post("/v1/domains", json!({"name": "www.example.com"}))
        .await
        .error(409, "conflict");
    // With the right value among others: allowed.
    records
        .lock()
        .unwrap()
        .get_mut("_hostplane-challenge.example.com")
        .unwrap()
        .push(token.clone());
    bob.post("/v1/domains", json!({"name": "www.example.com"}))
        .await
        .expect(201);
    assert_eq!(
        admin.get("/v1/domains/www.example.com").await.expect(200)["customer"],
        "bob"
    );
    server.stop().await;
}

#[tokio::test]
async fn admin_transfers_a_registrable_domain() {
    let server = Server::start().await;
    let (admin, alice, bob) = setup(&server).await;
    for name in ["example.org", "www.example.org"] {
        alice
            .post("/v1/domains", json!({"name": name}))
            .await
            .expect(201);
    }
    alice
        .post("/v1/mailboxes", json!({"address": "info@example.org"}))
        .await
        .expect(201);
    alice
        .post("/v1/sites", json!({"domain": "www.example.org"}))
        .await
        .expect(201);
    // Customers cannot transfer.
    alice
        .post(
            "/v1/domain-transfers",
            json!({"name": "example.org", "to": "bob"}),
        )
        .await
        .error(403, "forbidden");
    bob.post(
        "/v1/domain-transfers",
        json!({"name": "example.org", "to": "bob"}),
    )
    .await
    .error(403, "forbidden");
    admin
        .post(
            "/v1/domain-transfers",
            json!({"name": "example.org", "to": "nobody"}),
        )
        .await
        .error(404, "not_found");
    admin
        .post(
            "/v1/domain-transfers",
            json!({"name": "nothing.example.net", "to": "bob"}),
        )
        .await
        .error(404, "not_found");
    let t = admin
        .post(
            "/v1/domain-transfers",
            json!({"name": "www.example.org", "to": "bob"}),
        )
        .await
        .expect(200);
    assert_eq!(t["registrable"], "example.org");
    assert_eq!(t["domains"], json!(["example.org", "www.example.org"]));
    // Bob owns the names and what hangs under them; alice sees none of it.
    let mut bobs = bob.names("/v1/domains", "name").await;
    bobs.sort();
    assert_eq!(bobs, ["example.org", "www.example.org"]);
    bob.get("/v1/mailboxes/info@example.org").await.expect(200);
    bob.get("/v1/sites/www.example.org").await.expect(200);
    assert!(alice.names("/v1/domains", "name").await.is_empty());
    alice
        .get("/v1/mailboxes/info@example.org")
        .await
        .error(404, "not_found");
    // The namespace moved: bob adds names, alice no longer can.
    bob.post("/v1/domains", json!({"name": "shop.example.org"}))
        .await
        .expect(201);
    alice
        .post("/v1/domains", json!({"name": "blog.example.org"}))
        .await
        .error(409, "conflict");
    let events = admin.list_all("/v1/events").await;
    assert!(
        events
            .iter()
            .any(|e| e["action"] == "transfer" && e["object"] == "info@example.org"),
        "no transfer event for the mailbox"
    );
    server.stop().await;
}

/// A controller over a data dir that outlives it, so it can be started again.
struct Persistent {
    _dir: tempfile::TempDir,
    config_path: std::path::PathBuf,
    admin_token: String,
    ca: Vec<u8>,
}

impl Persistent {
    async fn init() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let out = controller::init::init(controller::init::InitOptions {
            data_dir: dir.path().join("cp"),
            listen: "127.0.0.1:0".parse().unwrap(),
            store_url: None,
            extra_names: vec![],
            admin_name: "admin".into(),
            plain_http: false,
        })
        .await
        .unwrap();
        Self {
            ca: std::fs::read(&out.ca_path).unwrap(),
            admin_token: out.admin_token,
            config_path: out.config_path,
            _dir: dir,
        }
    }

    /// Serve it; returns the admin's client and a stopper.
    async fn serve(
        &self,
        resolver: Option<SocketAddr>,
    ) -> (
        Api,
        tokio::sync::oneshot::Sender<()>,
        tokio::task::JoinHandle<Result<(), controller::ServeError>>,
    ) {
        let mut config = controller::config::ControllerConfig::load(&self.config_path).unwrap();
        config.names.resolver = resolver;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = config.url(listener.local_addr().unwrap());
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(controller::serve(config, listener, async move {
            let _ = rx.await;
        }));
        let http = reqwest::Client::builder()
            .add_root_certificate(reqwest::Certificate::from_pem(&self.ca).unwrap())
            .build()
            .unwrap();
        let api = Api {
            http,
            url,
            token: Some(self.admin_token.clone()),
        };
        (api, tx, task)
    }
}

#[tokio::test]
async fn conflicts_in_a_store_are_reported_at_start() {
    let (dns, records) = txt_server().await;
    let cp = Persistent::init().await;
    let (admin, stop, task) = cp.serve(Some(dns)).await;
    default_clusters(&admin).await;
    for c in ["alice", "bob"] {
        admin
            .post("/v1/customers", json!({"name": c}))
            .await
            .expect(201);
    }
    admin
        .post(
            "/v1/servers",
            json!({"name": "ns1", "cluster": "dns-1", "hostname": "ns1.platform.example",
                "addresses": ["192.0.2.10"], "country": "GB"}),
        )
        .await
        .expect(201);
    // Two holders of one namespace (bob proved control while alice kept her names)
    // and a customer's name in the platform zone (added by an admin).
    admin
        .post(
            "/v1/domains",
            json!({"name": "example.com", "customer": "alice"}),
        )
        .await
        .expect(201);
    let ch = admin
        .post(
            "/v1/domain-challenges",
            json!({"name": "example.com", "customer": "bob"}),
        )
        .await
        .expect(200);
    records.lock().unwrap().insert(
        "_hostplane-challenge.example.com".into(),
        vec![ch["value"].as_str().unwrap().to_owned()],
    );
    admin
        .post(
            "/v1/domains",
            json!({"name": "www.example.com", "customer": "bob"}),
        )
        .await
        .expect(201);
    admin
        .post(
            "/v1/domains",
            json!({"name": "shop.platform.example", "customer": "alice"}),
        )
        .await
        .expect(201);
    let conflicts = |events: &[serde_json::Value]| {
        events
            .iter()
            .filter(|e| e["action"] == "ownership.conflict")
            .map(|e| e["detail"].clone())
            .collect::<Vec<_>>()
    };
    assert!(conflicts(&admin.list_all("/v1/events").await).is_empty());
    stop.send(()).unwrap();
    task.await.unwrap().unwrap();

    // Start again: both are reported, nothing is deleted.
    let (admin, stop, task) = cp.serve(Some(dns)).await;
    let found = conflicts(&admin.list_all("/v1/events").await);
    assert_eq!(found.len(), 2, "{found:?}");
    let shared = found
        .iter()
        .find(|d| d["rule"] == "shared_namespace")
        .expect("shared namespace reported");
    assert_eq!(shared["registrable"], "example.com");
    assert_eq!(shared["holders"].as_array().unwrap().len(), 2);
    let platform = found
        .iter()
        .find(|d| d["rule"] == "platform_zone")
        .expect("platform name reported");
    assert_eq!(platform["domain"], "shop.platform.example");
    for name in ["example.com", "www.example.com", "shop.platform.example"] {
        admin.get(&format!("/v1/domains/{name}")).await.expect(200);
    }
    stop.send(()).unwrap();
    task.await.unwrap().unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn racing_accounts_cannot_share_a_namespace() {
    let (dns, _records) = txt_server().await;
    let server = Server::start_with(|c| c.names.resolver = Some(dns)).await;
    let (admin, alice, bob) = setup(&server).await;
    let mut tasks = Vec::new();
    for i in 0..16 {
        let c = if i % 2 == 0 {
            alice.clone()
        } else {
            bob.clone()
        };
        tasks.push(tokio::spawn(async move {
            let r = c
                .post("/v1/domains", json!({"name": format!("n{i}.race.example")}))
                .await;
            (i % 2, r.status.as_u16())
        }));
    }
    let mut winners = std::collections::BTreeSet::new();
    for t in tasks {
        let (who, status) = t.await.unwrap();
        match status {
            201 => {
                winners.insert(who);
            }
            409 => {}
            other => panic!("unexpected status {other}"),
        }
    }
    assert_eq!(
        winners.len(),
        1,
        "both accounts got names under race.example"
    );
    let owners: std::collections::BTreeSet<String> = admin
        .list_all("/v1/domains")
        .await
        .iter()
        .map(|d| d["customer"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(owners.len(), 1, "{owners:?}");
    server.stop().await;
}
