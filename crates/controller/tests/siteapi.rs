//! A site's files through the API (issue 14): kept and local paths with their
//! rules, tenancy, rollback to a kept deployment, the restore lifecycle and
//! conflicts and SQLite warnings, with files reports sent through the real agent
//! heartbeat endpoint (mutual TLS, a joined files server) and the files server's
//! desired config read from the real config endpoint.

#![allow(clippy::unwrap_used)]

mod common;

use std::time::{Duration, Instant};

use common::{Api, Server};
use proto::agent_v1::{DesiredConfig, RoleConfig, CONFIG_PATH, HEARTBEAT_PATH};
use serde_json::{json, Value};

/// A joined files server speaking the agent protocol (mutual TLS).
type Files = common::Joined;

/// Join a server named `name` to cluster `cluster`.
async fn join(srv: &Server, admin: &Api, cluster: &str, name: &str) -> Files {
    common::join_agent(srv, admin, cluster, name).await
}

impl Files {
    /// One heartbeat carrying `report` (a `RoleReport::Files` as JSON).
    async fn report(&self, report: Value) {
        let status = self
            .http
            .post(format!("{}{HEARTBEAT_PATH}", self.url))
            .json(&json!({
                "applied_revision": 1,
                "engines": [{"name": "files", "state": "ok", "detail": "test"}],
                "agent_version": "test",
                "report": report,
            }))
            .send()
            .await
            .unwrap()
            .status();
        assert_eq!(status, reqwest::StatusCode::OK);
    }

    /// The server's desired files config now.
    async fn config(&self) -> proto::agent_v1::FilesConfig {
        let res = self
            .http
            .get(format!("{}{CONFIG_PATH}?after=0", self.url))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), reqwest::StatusCode::OK);
        let doc: DesiredConfig = serde_json::from_slice(&res.bytes().await.unwrap()).unwrap();
        match doc.role {
            RoleConfig::Files(f) => f,
            other => panic!("{other:?}"),
        }
    }
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

/// Default clusters, customer `acme` (as a client) with `shop.example` and its
/// site in `mode`.
async fn setup(srv: &Server, mode: &str) -> (Api, Api) {
    let admin = srv.admin();
    common::default_clusters(&admin).await;
    let acme = common::customer(srv, &admin, "acme", json!({})).await;
    acme.post("/v1/domains", json!({"name": "shop.example"}))
        .await
        .expect(201);
    acme.post("/v1/sites", json!({"domain": "shop.example", "mode": mode}))
        .await
        .expect(201);
    (admin, acme)
}

fn files_report(sites: Value, restores: Value) -> Value {
    json!({"role": "files", "sites": sites, "restores": restores})
}

#[tokio::test]
async fn keep_and_local_paths_are_checked_stored_and_shown() {
    let srv = Server::start().await;
    let (admin, acme) = setup(&srv, "single").await;
    let v = acme
        .patch(
            "/v1/sites/shop.example",
            json!({"keep": ["wp-content/uploads/"], "local": ["wp-content/cache"]}),
        )
        .await
        .expect(200);
    assert_eq!(v["keep"], json!(["wp-content/uploads"]), "normalised: {v}");
    assert_eq!(v["local"], json!(["wp-content/cache"]));
    assert_eq!(v["quota_mb"], 10240, "the default plan's site_disk_mb: {v}");
    assert!(v.get("usage_bytes").is_none(), "no report yet: {v}");
    assert_eq!(v["conflicts"], 0);
    // One list replaces only itself; the other is checked against it.
    let v = acme
        .patch("/v1/sites/shop.example", json!({"local": []}))
        .await
        .expect(200);
    assert_eq!(v["keep"], json!(["wp-content/uploads"]));
    assert_eq!(v["local"], json!([]));
    // Every rule names its field.
    for (body, field, rule) in [
        (json!({"keep": ["../etc"]}), "keep[0]", "dot_part"),
        (json!({"keep": ["a", "./b"]}), "keep[1]", "dot_part"),
        (json!({"keep": ["/var/www"]}), "keep[0]", "absolute"),
        (json!({"keep": [""]}), "keep[0]", "empty"),
        (json!({"local": ["a//b"]}), "local[0]", "empty_part"),
        (json!({"local": ["a\u{7}b"]}), "local[0]", "bad_character"),
        (json!({"local": ["x".repeat(4097)]}), "local[0]", "too_long"),
        (json!({"keep": ["a", "a/"]}), "keep[1]", "duplicate"),
        (
            json!({"local": ["wp-content/uploads"]}),
            "local[0]",
            "keep_and_local",
        ),
        (
            json!({"keep": (0..33).map(|i| format!("p{i}")).collect::<Vec<_>>()}),
            "keep",
            "too_many",
        ),
    ] {
        let e = acme
            .patch("/v1/sites/shop.example", body)
            .await
            .invalid(field);
        assert_eq!(e["rule"], rule, "{e}");
    }
    // Nothing of a refused request was stored.
    let v = acme.get("/v1/sites/shop.example").await.expect(200);
    assert_eq!(v["keep"], json!(["wp-content/uploads"]));
    // Tenancy: another customer sees nothing of it; the admin does.
    let other = common::customer(&srv, &admin, "other", json!({})).await;
    other
        .patch("/v1/sites/shop.example", json!({"keep": ["x"]}))
        .await
        .error(404, "not_found");
    for path in [
        "/v1/sites/shop.example/conflicts",
        "/v1/sites/shop.example/deployments",
    ] {
        other.get(path).await.error(404, "not_found");
    }
    other
        .post("/v1/sites/shop.example/restore", json!({"path": "a"}))
        .await
        .error(404, "not_found");
    other
        .post("/v1/sites/shop.example/rollback", json!({}))
        .await
        .error(404, "not_found");
    admin
        .patch("/v1/sites/shop.example", json!({"keep": ["x"]}))
        .await
        .expect(200);
    // The OpenAPI document lists the new endpoints.
    let doc = srv.client(None).get("/v1/openapi.json").await.expect(200);
    for p in [
        "/v1/sites/{domain}/conflicts",
        "/v1/sites/{domain}/restore",
        "/v1/sites/{domain}/restore/{id}",
        "/v1/sites/{domain}/rollback",
        "/v1/sites/{domain}/deployments",
    ] {
        assert!(doc["paths"][p].is_object(), "{p} missing from openapi");
    }
    srv.stop().await;
}

/// A tar the controller accepts: one file holding `seed`.
fn archive(seed: u8) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    let mut h = tar::Header::new_ustar();
    h.set_size(1);
    h.set_mode(0o644);
    b.append_data(&mut h, "index.html", [seed].as_slice())
        .expect("tar");
    b.into_inner().expect("tar")
}

async fn upload(c: &Api, domain: &str, seed: u8) -> String {
    let resp = c
        .http
        .put(format!("{}/v1/sites/{domain}/content", c.url))
        .bearer_auth(c.token.as_deref().unwrap())
        .header("content-type", "application/x-tar")
        .body(archive(seed))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let v: Value = resp.json().await.unwrap();
    v["id"].as_str().unwrap().to_owned()
}

async fn put_content(c: &Api, domain: &str, body: Vec<u8>) -> (u16, Value) {
    let resp = c
        .http
        .put(format!("{}/v1/sites/{domain}/content", c.url))
        .bearer_auth(c.token.as_deref().unwrap())
        .body(body)
        .send()
        .await
        .unwrap();
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap_or(Value::Null))
}

fn zip_of(entries: &[(&str, &[u8])]) -> Vec<u8> {
    use std::io::Write as _;
    let mut w = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let opts = zip::write::SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Deflated)
        .large_file(true);
    for (name, data) in entries {
        w.start_file(*name, opts).unwrap();
        w.write_all(data).unwrap();
    }
    w.finish().unwrap().into_inner()
}

/// A zip release is kept as a tar; zip-slip and a zip bomb are refused at upload
/// with a 422 naming the body, and nothing is kept.
#[tokio::test]
async fn zip_releases_are_checked_for_slip_and_bombs() {
    let srv = Server::start().await;
    let (_admin, acme) = setup(&srv, "single").await;
    let (status, v) = put_content(
        &acme,
        "shop.example",
        zip_of(&[("public/index.html", b"<p>hi</p>")]),
    )
    .await;
    assert_eq!(status, 200, "{v}");
    let good = v["id"].as_str().unwrap().to_owned();
    let (status, e) = put_content(
        &acme,
        "shop.example",
        zip_of(&[("../../../etc/cron.d/x", b"* * * * * root sh")]),
    )
    .await;
    assert_eq!(status, 422, "{e}");
    assert_eq!(e["field"], "body");
    assert_eq!(e["rule"], "archive_entry");
    assert!(e["message"].as_str().unwrap().contains("zip-slip"), "{e}");
    let zeros = vec![0u8; 200 << 20];
    let (status, e) = put_content(&acme, "shop.example", zip_of(&[("z.bin", &zeros)])).await;
    assert_eq!(status, 422, "{e}");
    assert_eq!(e["rule"], "archive_bomb");
    // A tar with `..` is refused too.
    let mut h = tar::Header::new_ustar();
    h.as_old_mut().name[..9].copy_from_slice(b"../x.html");
    h.set_size(1);
    h.set_mode(0o644);
    h.set_cksum();
    let mut b = tar::Builder::new(Vec::new());
    b.append(&h, [1u8].as_slice()).unwrap();
    let (status, e) = put_content(&acme, "shop.example", b.into_inner().unwrap()).await;
    assert_eq!(status, 422, "{e}");
    assert_eq!(e["rule"], "archive_entry");
    let kept = acme
        .get("/v1/sites/shop.example/deployments")
        .await
        .expect(200);
    assert_eq!(kept.as_array().unwrap().len(), 1, "{kept}");
    assert_eq!(kept[0]["id"], good);
    srv.stop().await;
}

#[tokio::test]
async fn rollback_makes_a_kept_deployment_current_with_an_event() {
    let srv = Server::start().await;
    let (admin, acme) = setup(&srv, "single").await;
    let e = acme
        .post("/v1/sites/shop.example/rollback", json!({}))
        .await
        .error(409, "conflict");
    assert_eq!(e["rule"], "no_deployment", "{e}");
    let first = upload(&acme, "shop.example", 1).await;
    let e = acme
        .post("/v1/sites/shop.example/rollback", json!({}))
        .await
        .error(409, "conflict");
    assert_eq!(e["rule"], "no_earlier_deployment", "{e}");
    let second = upload(&acme, "shop.example", 2).await;
    let third = upload(&acme, "shop.example", 3).await;
    let kept = acme
        .get("/v1/sites/shop.example/deployments")
        .await
        .expect(200);
    let ids: Vec<&str> = kept
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, vec![third.as_str(), second.as_str(), first.as_str()]);
    assert_eq!(kept[0]["current"], true);
    // Default: the one before the current.
    let v = acme
        .post("/v1/sites/shop.example/rollback", json!({}))
        .await
        .expect(200);
    assert_eq!(v["id"], second);
    // By id: the oldest; the order is then first, second, third.
    let v = acme
        .post("/v1/sites/shop.example/rollback", json!({"id": first}))
        .await
        .expect(200);
    assert_eq!(v["id"], first);
    let kept = acme
        .get("/v1/sites/shop.example/deployments")
        .await
        .expect(200);
    let ids: Vec<&str> = kept
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, vec![first.as_str(), second.as_str(), third.as_str()]);
    acme.post(
        "/v1/sites/shop.example/rollback",
        json!({"id": "f".repeat(64)}),
    )
    .await
    .error(404, "not_found");
    let e = acme
        .post("/v1/sites/shop.example/rollback", json!({"id": first}))
        .await
        .error(409, "conflict");
    assert_eq!(e["rule"], "already_current", "{e}");
    let ev = events(&admin, "site.rollback").await;
    assert_eq!(ev.len(), 2, "{ev:?}");
    assert!(ev
        .iter()
        .any(|e| e["detail"]["to"] == first && e["detail"]["from"] == second));
    srv.stop().await;
}

#[tokio::test]
async fn a_restore_travels_to_the_files_server_until_it_reports_the_result() {
    let srv = Server::start().await;
    let (admin, acme) = setup(&srv, "single").await;
    let files = join(&srv, &admin, "files-1", "files-a").await;
    // Bad input, each with its field and rule.
    let e = acme
        .post("/v1/sites/shop.example/restore", json!({"path": "../x"}))
        .await
        .invalid("path");
    assert_eq!(e["rule"], "dot_part");
    let e = acme
        .post(
            "/v1/sites/shop.example/restore",
            json!({"path": "a", "at": "yesterday"}),
        )
        .await
        .invalid("at");
    assert_eq!(e["rule"], "bad_time");
    let e = acme
        .post(
            "/v1/sites/shop.example/restore",
            json!({"path": "a", "at": "2999-01-01T00:00:00Z"}),
        )
        .await
        .invalid("at");
    assert_eq!(e["rule"], "in_future");
    // Asked: 202, pending, in the files server's config.
    let r = acme
        .post(
            "/v1/sites/shop.example/restore",
            json!({"path": "wp-content/uploads/logo.png", "at": "2026-01-01T00:00:00Z"}),
        )
        .await
        .expect(202);
    let id = r["id"].as_str().unwrap().to_owned();
    assert_eq!(r["state"], "pending");
    assert_eq!(r["at"], "2026-01-01T00:00:00Z");
    let path = format!("/v1/sites/shop.example/restore/{id}");
    assert_eq!(acme.get(&path).await.expect(200)["state"], "pending");
    let id2 = id.clone();
    until(5, "the restore in the config", || async {
        files
            .config()
            .await
            .restores
            .iter()
            .any(|x| x.id == id2 && x.domain == "shop.example" && x.at == Some(1_767_225_600))
    })
    .await;
    // The result comes back in a report: the request is closed and leaves the config.
    files
        .report(files_report(
            json!([]),
            json!([{"id": id, "ok": true, "message": "restored the version of 2025-12-31"}]),
        ))
        .await;
    until(5, "the result", || async {
        acme.get(&path).await.expect(200)["state"] == "ok"
    })
    .await;
    assert_eq!(
        acme.get(&path).await.expect(200)["message"],
        "restored the version of 2025-12-31"
    );
    until(5, "the config without it", || async {
        files.config().await.restores.is_empty()
    })
    .await;
    let ev = events(&admin, "site.restore").await;
    assert_eq!(ev.len(), 1, "{ev:?}");
    assert_eq!(ev[0]["detail"]["ok"], true);
    // A failure is shown with its message.
    let r = acme
        .post(
            "/v1/sites/shop.example/restore",
            json!({"path": "gone.txt"}),
        )
        .await
        .expect(202);
    let id = r["id"].as_str().unwrap().to_owned();
    files
        .report(files_report(
            json!([]),
            json!([{"id": id, "ok": false, "message": "no kept version of `gone.txt`"}]),
        ))
        .await;
    let path = format!("/v1/sites/shop.example/restore/{id}");
    until(5, "the failure", || async {
        acme.get(&path).await.expect(200)["state"] == "failed"
    })
    .await;
    // At most 10 pending per site.
    for i in 0..10 {
        acme.post(
            "/v1/sites/shop.example/restore",
            json!({"path": format!("f{i}")}),
        )
        .await
        .expect(202);
    }
    let e = acme
        .post("/v1/sites/shop.example/restore", json!({"path": "f10"}))
        .await
        .error(409, "conflict");
    assert_eq!(e["rule"], "too_many_pending", "{e}");
    acme.get("/v1/sites/shop.example/restore/r1-0000000000000000")
        .await
        .error(404, "not_found");
    srv.stop().await;
}

#[tokio::test]
async fn usage_conflicts_and_sqlite_warnings_come_from_the_files_report() {
    let srv = Server::start().await;
    let (admin, acme) = setup(&srv, "all").await;
    let files = join(&srv, &admin, "files-1", "files-a").await;
    let status = |sqlite: Value| {
        json!([{
            "domain": "shop.example", "usage_bytes": 123_456, "files": 7, "seq": 9,
            "conflicts": [{
                "id": "c1", "path": "wp-content/uploads/a.jpg", "origin": "web-2",
                "change_id": "x", "time": {"secs": 1_767_225_600, "nanos": 0},
                "node": {"kind": "file", "blake3": "0".repeat(64), "size": 42, "mode": 420,
                    "mtime": {"secs": 1_767_225_600, "nanos": 0}},
            }],
            "sqlite_paths": sqlite,
        }])
    };
    files
        .report(files_report(status(json!(["data/app.sqlite"])), json!([])))
        .await;
    until(5, "the warning event", || async {
        !events(&admin, "site.sqlite_warning").await.is_empty()
    })
    .await;
    let v = acme.get("/v1/sites/shop.example").await.expect(200);
    assert_eq!(v["usage_bytes"], 123_456, "{v}");
    assert_eq!(v["conflicts"], 1);
    let w = v["warnings"].as_array().unwrap();
    assert_eq!(w.len(), 1);
    assert!(w[0].as_str().unwrap().contains("data/app.sqlite"), "{v}");
    let c = acme
        .get("/v1/sites/shop.example/conflicts")
        .await
        .expect(200);
    assert_eq!(c[0]["path"], "wp-content/uploads/a.jpg");
    assert_eq!(c[0]["origin"], "web-2");
    assert_eq!(c[0]["kind"], "file");
    assert_eq!(c[0]["size"], 42);
    assert_eq!(c[0]["time"], "2026-01-01T00:00:00Z");
    // The same set again (another report, the same paths): no second event.
    files
        .report(files_report(status(json!(["data/app.sqlite"])), json!([])))
        .await;
    // A new set: a second event.
    files
        .report(files_report(
            status(json!(["data/app.sqlite", "x.db"])),
            json!([]),
        ))
        .await;
    until(5, "the second event", || async {
        events(&admin, "site.sqlite_warning").await.len() == 2
    })
    .await;
    // A `single` site shows no warning; switching back to `all` shows the known
    // databases in the answer at once.
    let v = acme
        .patch("/v1/sites/shop.example", json!({"mode": "single"}))
        .await
        .expect(200);
    assert!(v.get("warnings").is_none(), "{v}");
    let v = acme
        .patch("/v1/sites/shop.example", json!({"mode": "all"}))
        .await
        .expect(200);
    assert_eq!(v["warnings"].as_array().unwrap().len(), 2, "{v}");
    assert_eq!(events(&admin, "site.sqlite_warning").await.len(), 2);
    // A domain whose files the files server already holds: `site create --mode all`
    // answers with the warning at once.
    acme.post("/v1/domains", json!({"name": "blog.example"}))
        .await
        .expect(201);
    files
        .report(files_report(
            json!([{"domain": "blog.example", "usage_bytes": 1, "files": 1,
                "sqlite_paths": ["wp-content/database/.ht.sqlite"]}]),
            json!([]),
        ))
        .await;
    let v = acme
        .post(
            "/v1/sites",
            json!({"domain": "blog.example", "mode": "all"}),
        )
        .await
        .expect(201);
    let w = v["warnings"].as_array().unwrap();
    assert!(w[0].as_str().unwrap().contains(".ht.sqlite"), "{v}");
    srv.stop().await;
}

/// Resellers reach their customers' sites' files endpoints, not others'.
#[tokio::test]
async fn resellers_reach_only_their_customers_sites() {
    let srv = Server::start().await;
    let (admin, acme) = setup(&srv, "single").await;
    let r = common::customer(&srv, &admin, "resell", json!({"kind": "reseller"})).await;
    r.post("/v1/customers", json!({"name": "carol"}))
        .await
        .expect(201);
    let t = r
        .post(
            "/v1/tokens",
            json!({"name": "for-carol", "account": "carol"}),
        )
        .await
        .expect(201);
    let carol = srv.client(Some(t["token"].as_str().unwrap()));
    carol
        .post("/v1/domains", json!({"name": "carol.example"}))
        .await
        .expect(201);
    carol
        .post("/v1/sites", json!({"domain": "carol.example"}))
        .await
        .expect(201);
    // Its customer's site: every endpoint answers.
    r.patch("/v1/sites/carol.example", json!({"keep": ["uploads"]}))
        .await
        .expect(200);
    r.get("/v1/sites/carol.example/conflicts").await.expect(200);
    r.get("/v1/sites/carol.example/deployments")
        .await
        .expect(200);
    let req = r
        .post("/v1/sites/carol.example/restore", json!({"path": "a.txt"}))
        .await
        .expect(202);
    let id = req["id"].as_str().unwrap();
    r.get(&format!("/v1/sites/carol.example/restore/{id}"))
        .await
        .expect(200);
    // acme's site, and acme's view of carol's restore: as if missing.
    for path in [
        "/v1/sites/shop.example/conflicts".to_owned(),
        "/v1/sites/shop.example/deployments".to_owned(),
    ] {
        r.get(&path).await.error(404, "not_found");
    }
    r.post("/v1/sites/shop.example/restore", json!({"path": "a"}))
        .await
        .error(404, "not_found");
    r.post("/v1/sites/shop.example/rollback", json!({}))
        .await
        .error(404, "not_found");
    acme.get(&format!("/v1/sites/carol.example/restore/{id}"))
        .await
        .error(404, "not_found");
    srv.stop().await;
}

impl Files {
    /// The delta config after revision `after` (waiting for a change).
    async fn delta(&self, after: i64) -> Option<proto::agent_delta::ConfigDelta> {
        let res = self
            .http
            .get(format!("{}{CONFIG_PATH}?after={after}&delta=1", self.url))
            .send()
            .await
            .unwrap();
        match res.status() {
            reqwest::StatusCode::OK => {
                Some(serde_json::from_slice(&res.bytes().await.unwrap()).unwrap())
            }
            reqwest::StatusCode::NOT_MODIFIED => None,
            s => panic!("delta query: {s}"),
        }
    }

    /// The revision of the server's desired config now.
    async fn revision(&self) -> i64 {
        let res = self
            .http
            .get(format!("{}{CONFIG_PATH}?after=0", self.url))
            .send()
            .await
            .unwrap();
        let doc: DesiredConfig = serde_json::from_slice(&res.bytes().await.unwrap()).unwrap();
        doc.revision
    }

    /// The next delta after `after` that touches an item of `prefix`: its upserted
    /// and removed item ids, and its revision.
    async fn next_change(&self, after: i64, prefix: &str) -> (Vec<String>, Vec<String>, i64) {
        let mut rev = after;
        for _ in 0..50 {
            let Some(d) = self.delta(rev).await else {
                continue;
            };
            assert_eq!(d.from, rev, "a delta, not a snapshot");
            rev = d.to;
            let up: Vec<String> = d.upserts.iter().map(|i| i.id.clone()).collect();
            if up
                .iter()
                .chain(&d.removals)
                .any(|id| id.starts_with(prefix))
            {
                return (up, d.removals.clone(), rev);
            }
        }
        panic!("no change of {prefix} after revision {after}");
    }
}

/// A site's file settings reach its files server as the one changed item.
#[tokio::test]
async fn paths_and_restores_travel_as_single_delta_items() {
    let srv = Server::start_with(|c| c.agents.config_wait_ms = 1500).await;
    let (admin, acme) = setup(&srv, "single").await;
    let files = join(&srv, &admin, "files-1", "files-a").await;
    // Let the key task's certificates settle first.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let rev = files.revision().await;
    acme.patch("/v1/sites/shop.example", json!({"keep": ["uploads"]}))
        .await
        .expect(200);
    let (up, removed, rev) = files.next_change(rev, "site_options").await;
    assert_eq!(up, vec!["site_options/shop.example"], "{up:?}");
    assert!(removed.is_empty(), "{removed:?}");
    let r = acme
        .post(
            "/v1/sites/shop.example/restore",
            json!({"path": "uploads/a.png"}),
        )
        .await
        .expect(202);
    let id = r["id"].as_str().unwrap().to_owned();
    let (up, _, rev) = files.next_change(rev, "restores").await;
    assert_eq!(up, vec![format!("restores/{id}")], "{up:?}");
    files
        .report(files_report(
            json!([]),
            json!([{"id": id, "ok": true, "message": "restored"}]),
        ))
        .await;
    let (up, removed, _) = files.next_change(rev, "restores").await;
    // The request's item goes (an empty list is an item of its own).
    assert!(up.iter().all(|i| !i.starts_with("restores/")), "{up:?}");
    assert_eq!(removed, vec![format!("restores/{id}")]);
    srv.stop().await;
}
