//! Delta configs end to end against a real controller (in-process, HTTPS, mutual
//! TLS): a snapshot and the deltas after it, with their blobs, rebuild exactly the
//! whole document `GET /v1/agent/config` serves; a server cannot fetch another
//! server's blobs.

#![allow(clippy::unwrap_used)]

mod common;

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use common::{Api, Server};
use proto::agent_delta::{blob_path, join, ConfigDelta, Item};
use proto::agent_v1::{DesiredConfig, RoleConfig, CONFIG_PATH};
use reqwest::StatusCode;
use serde_json::json;

type Agent = common::Joined;

async fn join_agent(srv: &Server, admin: &Api, cluster: &str, name: &str) -> Agent {
    common::join_agent(srv, admin, cluster, name).await
}

impl Agent {
    async fn get(&self, path: &str) -> (StatusCode, Vec<u8>) {
        let res = self
            .http
            .get(format!("{}{path}", self.url))
            .send()
            .await
            .unwrap();
        (res.status(), res.bytes().await.unwrap().to_vec())
    }

    async fn full(&self) -> DesiredConfig {
        let (status, body) = self.get(&format!("{CONFIG_PATH}?after=0")).await;
        assert_eq!(status, StatusCode::OK);
        serde_json::from_slice(&body).unwrap()
    }

    async fn delta(&self, after: i64) -> Option<ConfigDelta> {
        let (status, body) = self
            .get(&format!("{CONFIG_PATH}?after={after}&delta=1"))
            .await;
        match status {
            StatusCode::OK => Some(serde_json::from_slice(&body).unwrap()),
            StatusCode::NOT_MODIFIED => None,
            s => panic!("delta query: {s}"),
        }
    }

    /// Apply `d` to `items`, fetching each blob not in `blobs`; the role config.
    async fn apply(
        &self,
        d: &ConfigDelta,
        items: &mut BTreeMap<String, Item>,
        blobs: &mut HashMap<String, Vec<u8>>,
    ) -> (RoleConfig, usize) {
        if d.is_snapshot() {
            items.clear();
        }
        for id in &d.removals {
            items.remove(id);
        }
        for i in &d.upserts {
            items.insert(i.id.clone(), i.clone());
        }
        let mut fetched = 0;
        let wanted: Vec<String> = items
            .values()
            .flat_map(|i| i.blobs.values().cloned())
            .collect();
        for h in wanted {
            if blobs.contains_key(&h) {
                continue;
            }
            let (status, body) = self.get(&blob_path(&h)).await;
            assert_eq!(status, StatusCode::OK, "own blob {h}");
            assert_eq!(proto::agent_delta::blob_hash(&body), h);
            blobs.insert(h, body);
            fetched += 1;
        }
        let hashes: Vec<(String, [u8; 32])> =
            items.iter().map(|(id, i)| (id.clone(), i.hash())).collect();
        assert_eq!(
            proto::agent_delta::digest(hashes.iter().map(|(id, h)| (id.as_str(), h))),
            d.digest
        );
        let role = join(items.values(), |h| blobs.get(h).map(Vec::as_slice)).unwrap();
        (role, fetched)
    }
}

async fn site(admin: &Api, domain: &str, web: &str) {
    admin
        .post(
            "/v1/domains",
            json!({"name": domain, "customer": "acme", "clusters": {"web": web}}),
        )
        .await
        .expect(201);
    admin
        .post("/v1/sites", json!({"domain": domain, "mode": "all"}))
        .await
        .expect(201);
}

#[tokio::test]
async fn deltas_and_blobs_rebuild_the_full_document_and_blobs_stay_per_server() {
    let srv = Server::start_with(|c| c.agents.config_wait_ms = 1500).await;
    let admin = srv.admin();
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
    let web1 = join_agent(&srv, &admin, "web-a", "web-1").await;
    let web2 = join_agent(&srv, &admin, "web-b", "web-2").await;
    site(&admin, "a.example", "web-a").await;
    site(&admin, "b.example", "web-b").await;

    // Wait until both sites carry TLS material.
    let with_tls = |c: &DesiredConfig| match &c.role {
        RoleConfig::Web(w) => !w.sites.is_empty() && w.sites.iter().all(|s| s.tls.is_some()),
        _ => false,
    };
    let mut full = web1.full().await;
    for _ in 0..100 {
        if with_tls(&full) && with_tls(&web2.full().await) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
        full = web1.full().await;
    }
    assert!(with_tls(&full), "{full:?}");

    // A snapshot rebuilds the whole document, large material fetched by hash.
    let mut items = BTreeMap::new();
    let mut blobs = HashMap::new();
    let snap = web1.delta(0).await.unwrap();
    assert!(snap.is_snapshot());
    assert_eq!(snap.to, full.revision);
    let (role, fetched) = web1.apply(&snap, &mut items, &mut blobs).await;
    assert_eq!(role, full.role);
    assert!(fetched >= 1, "the site's TLS material is a blob");
    let site_a = &items["sites/a.example"];
    assert!(site_a.value.get("tls").is_none() && site_a.blobs.contains_key("tls"));

    // A new site: the delta carries only it (and its blob).
    site(&admin, "c.example", "web-a").await;
    let mut rev = snap.to;
    let mut seen_c = false;
    for _ in 0..50 {
        let Some(d) = web1.delta(rev).await else {
            continue;
        };
        assert_eq!(d.from, rev, "a delta, not a snapshot");
        assert!(d.upserts.iter().all(|i| i.id != "sites/a.example"));
        let (role, _) = web1.apply(&d, &mut items, &mut blobs).await;
        rev = d.to;
        let now = web1.full().await;
        if now.revision == rev {
            assert_eq!(role, now.role);
        }
        if items
            .get("sites/c.example")
            .is_some_and(|i| i.blobs.contains_key("tls"))
        {
            seen_c = true;
            break;
        }
    }
    assert!(seen_c, "c.example with TLS reached web-1 through deltas");

    // An unknown revision is answered with a snapshot at once.
    let d = web1.delta(rev + 1000).await.unwrap();
    assert!(d.is_snapshot());

    // A resync by revision: the delta from the agent's own revision at once (no
    // waiting for a change, so 200 and not 304), empty while nothing changed, with
    // the digest of the items it holds; from an unknown revision, a snapshot.
    let (mut items, mut blobs) = (BTreeMap::new(), HashMap::new());
    let snap = web1.delta(0).await.unwrap();
    web1.apply(&snap, &mut items, &mut blobs).await;
    let held = snap.to;
    let (status, body) = web1
        .get(&format!("{CONFIG_PATH}?after={held}&delta=1&resync=1"))
        .await;
    assert_eq!(status, StatusCode::OK);
    let d: ConfigDelta = serde_json::from_slice(&body).unwrap();
    assert_eq!(d.from, held, "a delta, not a snapshot");
    if d.to == held {
        assert!(d.upserts.is_empty() && d.removals.is_empty(), "{d:?}");
        assert_eq!(d.digest, snap.digest);
    }
    let (role, _) = web1.apply(&d, &mut items, &mut blobs).await;
    let now = web1.full().await;
    if now.revision == d.to {
        assert_eq!(role, now.role);
    }
    let (status, body) = web1
        .get(&format!(
            "{CONFIG_PATH}?after={}&delta=1&resync=1",
            held + 1000
        ))
        .await;
    assert_eq!(status, StatusCode::OK);
    let d: ConfigDelta = serde_json::from_slice(&body).unwrap();
    assert!(d.is_snapshot());

    // web-2's blobs: served to web-2, 404 to web-1.
    let snap2 = web2.delta(0).await.unwrap();
    let foreign: Vec<String> = snap2
        .upserts
        .iter()
        .flat_map(|i| i.blobs.values().cloned())
        .collect();
    assert!(!foreign.is_empty());
    for h in &foreign {
        assert_eq!(web2.get(&blob_path(h)).await.0, StatusCode::OK);
        assert_eq!(web1.get(&blob_path(h)).await.0, StatusCode::NOT_FOUND);
    }
    // Without a client certificate: refused.
    let anon = reqwest::Client::builder()
        .use_rustls_tls()
        .add_root_certificate(reqwest::Certificate::from_pem(&srv.ca).unwrap())
        .build()
        .unwrap();
    let status = anon
        .get(format!("{}{}", srv.url, blob_path(&foreign[0])))
        .send()
        .await
        .unwrap()
        .status();
    assert_eq!(status, StatusCode::UNAUTHORIZED);
}
