//! Plans and limits (issue 12 point 4) and the deployment archives kept per site
//! (point 5), against a real controller over HTTPS.

#![allow(clippy::unwrap_used)]

mod common;

use common::{customer, default_clusters, Api, Server};
use serde_json::{json, Value};

/// Servers for the default clusters, plus a web cluster nobody uses.
async fn servers(admin: &Api) {
    for (i, role) in ["web", "dns", "mail", "files", "db"].iter().enumerate() {
        admin
            .post(
                "/v1/servers",
                json!({"name": format!("{role}-a"), "cluster": format!("{role}-1"),
                       "hostname": format!("{role}.hosting.example"),
                       "addresses": [format!("192.0.2.{}", 10 + i)], "country": "DE"}),
            )
            .await
            .expect(201);
    }
    admin
        .post("/v1/clusters", json!({"name": "web-secret", "role": "web"}))
        .await
        .expect(201);
    admin
        .post(
            "/v1/servers",
            json!({"name": "hidden-web", "cluster": "web-secret",
                   "hostname": "hidden.hosting.example", "addresses": ["198.51.100.99"], "country": "FR"}),
        )
        .await
        .expect(201);
}

async fn events(c: &Api) -> Vec<Value> {
    c.list_all("/v1/events").await
}

#[tokio::test]
async fn customers_neither_choose_clusters_nor_see_the_inventory() {
    let srv = Server::start().await;
    let admin = srv.admin();
    default_clusters(&admin).await;
    servers(&admin).await;
    let a = customer(&srv, &admin, "alice", json!({})).await;
    let r = customer(&srv, &admin, "resell", json!({"kind": "reseller"})).await;
    r.post("/v1/customers", json!({"name": "carol"}))
        .await
        .expect(201);

    // Choosing clusters: 403 naming the field, for customers and for resellers
    // their admin did not allow.
    a.post(
        "/v1/domains",
        json!({"name": "alice.example", "clusters": {"web": "web-secret"}}),
    )
    .await
    .error(403, "forbidden");
    let e = a
        .post(
            "/v1/domains",
            json!({"name": "alice.example", "clusters": {"web": "web-1"}}),
        )
        .await
        .error(403, "forbidden");
    assert_eq!(e["field"], "clusters");
    a.patch(
        "/v1/customers/alice",
        json!({"default_clusters": {"web": "web-secret"}}),
    )
    .await
    .error(403, "forbidden");
    a.post(
        "/v1/databases",
        json!({"name": "alice_db", "engine": "mariadb", "cluster": "db-1"}),
    )
    .await
    .error(403, "forbidden");
    a.post(
        "/v1/db-users",
        json!({"name": "alice_u", "engine": "mariadb", "cluster": "db-1"}),
    )
    .await
    .error(403, "forbidden");
    r.post(
        "/v1/domains",
        json!({"name": "carol.example", "customer": "carol", "clusters": {"web": "web-secret"}}),
    )
    .await
    .error(403, "forbidden");

    // The inventory: clusters with server names are for admins.
    for c in [&a, &r] {
        c.get("/v1/clusters").await.error(403, "forbidden");
        c.get("/v1/clusters/web-1").await.error(403, "forbidden");
        c.get("/v1/servers").await.error(403, "forbidden");
        let status = c.get("/v1/status").await.expect(200);
        assert_eq!(status["clusters"], json!([]));
        assert_eq!(status["servers"], json!([]));
    }
    // A customer may not let itself choose clusters.
    r.patch("/v1/customers/resell", json!({"may_choose_clusters": true}))
        .await
        .error(403, "forbidden");

    // Admin allows the reseller: it chooses clusters for its customers and sees
    // cluster names, but not the servers in them.
    admin
        .patch("/v1/customers/resell", json!({"may_choose_clusters": true}))
        .await
        .expect(200);
    admin
        .patch("/v1/customers/alice", json!({"may_choose_clusters": true}))
        .await
        .invalid("may_choose_clusters");
    r.post(
        "/v1/domains",
        json!({"name": "carol.example", "customer": "carol", "clusters": {"web": "web-secret"}}),
    )
    .await
    .expect(201);
    let listed = r.list_all("/v1/clusters").await;
    assert!(listed.iter().any(|c| c["name"] == "web-secret"));
    assert!(listed.iter().all(|c| c["servers"] == json!([])));

    // Endpoints: alice sees the servers of her own domain only.
    a.post("/v1/domains", json!({"name": "alice.example"}))
        .await
        .expect(201);
    a.post("/v1/sites", json!({"domain": "alice.example"}))
        .await
        .expect(201);
    a.post(
        "/v1/databases",
        json!({"name": "alice_db", "engine": "mariadb"}),
    )
    .await
    .expect(201);
    // On a cluster holding its database, naming it is fine.
    a.post(
        "/v1/db-users",
        json!({"name": "alice_u", "engine": "mariadb", "cluster": "db-1"}),
    )
    .await
    .expect(201);
    let ep = a.list_all("/v1/endpoints").await;
    assert_eq!(ep.len(), 1, "{ep:?}");
    let ep = &ep[0];
    assert_eq!(ep["domain"], "alice.example");
    assert_eq!(ep["web"], json!(["192.0.2.10"]));
    assert_eq!(ep["dns"], json!(["dns.hosting.example"]));
    assert_eq!(ep["mail"], json!(["mail.hosting.example"]));
    assert_eq!(ep["ftp"], json!(["files.hosting.example"]));
    assert_eq!(ep["databases"]["alice_db"], json!(["db.hosting.example"]));
    let text = serde_json::to_string(&ep).unwrap();
    assert!(!text.contains("hidden"), "{text}");
    assert!(!text.contains("198.51.100.99"), "{text}");
    assert!(
        !text.contains("web-a"),
        "server names are inventory: {text}"
    );
    // Another tenant's domain is not there, by filter either.
    a.get("/v1/endpoints?domain=carol.example")
        .await
        .invalid("domain");
    srv.stop().await;
}

#[tokio::test]
async fn quotas_have_a_range_and_stay_under_the_limit() {
    let srv = Server::start().await;
    let admin = srv.admin();
    default_clusters(&admin).await;
    let a = customer(&srv, &admin, "alice", json!({})).await;
    a.post("/v1/domains", json!({"name": "alice.example"}))
        .await
        .expect(201);
    // Unlimited and absurd quotas are refused; the plan's maximum is the default
    // plan's 10240 MiB.
    for q in [json!(0), json!(u64::MAX), json!(20_000)] {
        a.post(
            "/v1/mailboxes",
            json!({"address": "x@alice.example", "quota_mb": q}),
        )
        .await
        .invalid("quota_mb");
        a.post(
            "/v1/ftp-accounts",
            json!({"username": "alice-x", "domain": "alice.example", "quota_mb": q}),
        )
        .await
        .invalid("quota_mb");
    }
    let m = a
        .post("/v1/mailboxes", json!({"address": "info@alice.example"}))
        .await
        .expect(201);
    assert_eq!(m["quota_mb"], 1024);
    let f = a
        .post(
            "/v1/ftp-accounts",
            json!({"username": "alice-ftp", "domain": "alice.example"}),
        )
        .await
        .expect(201);
    assert_eq!(f["quota_mb"], 10240, "FTP accounts are never unlimited");
    a.patch("/v1/mailboxes/info@alice.example", json!({"quota_mb": 0}))
        .await
        .invalid("quota_mb");
    a.patch("/v1/ftp-accounts/alice-ftp", json!({"quota_mb": 0}))
        .await
        .invalid("quota_mb");

    // The provider lowers the limit below what the mailbox has: it keeps 1024,
    // may go lower (700), never back up past the limit.
    admin
        .patch(
            "/v1/customers/alice",
            json!({"limits": {"max_mailbox_quota_mb": 500}}),
        )
        .await
        .expect(200);
    let view = a.get("/v1/customers/alice").await.expect(200);
    assert_eq!(view["limits"]["max_mailbox_quota_mb"], 500);
    let warned =
        a.list_all("/v1/events").await.into_iter().any(|e| {
            e["action"] == "limit.warning" && e["detail"]["limit"] == "max_mailbox_quota_mb"
        });
    assert!(warned, "a quota above the lowered limit is warned about");
    assert_eq!(
        a.get("/v1/mailboxes/info@alice.example").await.expect(200)["quota_mb"],
        1024
    );
    a.patch("/v1/mailboxes/info@alice.example", json!({"quota_mb": 700}))
        .await
        .expect(200);
    let e = a
        .patch("/v1/mailboxes/info@alice.example", json!({"quota_mb": 900}))
        .await
        .invalid("quota_mb");
    assert_eq!(e["rule"], "above_plan_limit");
    let m2 = a
        .post("/v1/mailboxes", json!({"address": "new@alice.example"}))
        .await
        .expect(201);
    assert_eq!(m2["quota_mb"], 500);
    // Customers set neither their limits nor their plan.
    a.patch(
        "/v1/customers/alice",
        json!({"limits": {"max_mailbox_quota_mb": 1000000}}),
    )
    .await
    .error(403, "forbidden");
    a.patch("/v1/customers/alice", json!({"plan": ""}))
        .await
        .error(403, "forbidden");
    admin
        .patch(
            "/v1/customers/alice",
            json!({"limits": {"max_mailbox_quota_mb": 0}}),
        )
        .await
        .invalid("limits.max_mailbox_quota_mb");
    // FTP quotas bound what an account writes under its home: never more than the
    // site disk.
    admin
        .patch(
            "/v1/customers/alice",
            json!({"limits": {"site_disk_mb": 300}}),
        )
        .await
        .expect(200);
    a.patch("/v1/ftp-accounts/alice-ftp", json!({"quota_mb": 400}))
        .await
        .expect(200);
    a.patch("/v1/ftp-accounts/alice-ftp", json!({"quota_mb": 500}))
        .await
        .invalid("quota_mb");
    let f = a
        .post(
            "/v1/ftp-accounts",
            json!({"username": "alice-two", "domain": "alice.example"}),
        )
        .await
        .expect(201);
    assert_eq!(f["quota_mb"], 300);
    srv.stop().await;
}

#[tokio::test]
async fn plans_bound_counts_even_under_concurrency() {
    let srv = Server::start().await;
    let admin = srv.admin();
    default_clusters(&admin).await;
    let a = customer(&srv, &admin, "alice", json!({})).await;
    let r = customer(&srv, &admin, "resell", json!({"kind": "reseller"})).await;

    let p = admin
        .post(
            "/v1/plans",
            json!({"name": "small", "limits": {"max_domains": 3, "max_mailboxes": 1}}),
        )
        .await
        .expect(201);
    assert_eq!(p["limits"]["max_domains"], 3);
    assert_eq!(p["limits"]["max_databases"], 100, "default plan value");
    admin
        .post(
            "/v1/plans",
            json!({"name": "bad", "limits": {"max_mailbox_quota_mb": 0}}),
        )
        .await
        .invalid("limits.max_mailbox_quota_mb");
    a.get("/v1/plans").await.error(403, "forbidden");
    a.post("/v1/plans", json!({"name": "mine"}))
        .await
        .error(403, "forbidden");
    admin
        .patch("/v1/customers/alice", json!({"plan": "small"}))
        .await
        .expect(200);
    assert_eq!(
        a.get("/v1/customers/alice").await.expect(200)["plan"],
        "small"
    );

    // Ten parallel creates: exactly three domains.
    let mut tasks = Vec::new();
    for i in 0..10 {
        let a = a.clone();
        tasks.push(tokio::spawn(async move {
            a.post("/v1/domains", json!({"name": format!("d{i}.example")}))
                .await
        }));
    }
    let mut created = 0;
    for t in tasks {
        let resp = t.await.unwrap();
        match resp.status.as_u16() {
            201 => created += 1,
            409 => {
                let body = resp.error(409, "limit_reached");
                assert_eq!(body["field"], "max_domains");
            }
            other => panic!("unexpected {other}: {:?}", resp.body),
        }
    }
    assert_eq!(created, 3);
    assert_eq!(a.list_all("/v1/domains").await.len(), 3);

    let d = a.list_all("/v1/domains").await[0]["name"]
        .as_str()
        .unwrap()
        .to_owned();
    a.post("/v1/mailboxes", json!({"address": format!("a@{d}")}))
        .await
        .expect(201);
    a.post("/v1/mailboxes", json!({"address": format!("b@{d}")}))
        .await
        .error(409, "limit_reached");

    // Lowering the plan below use keeps what exists, refuses more, warns.
    admin
        .patch("/v1/plans/small", json!({"limits": {"max_domains": 1}}))
        .await
        .expect(200);
    assert_eq!(a.list_all("/v1/domains").await.len(), 3);
    let warnings: Vec<Value> = events(&a)
        .await
        .into_iter()
        .filter(|e| e["action"] == "limit.warning")
        .collect();
    assert!(
        warnings
            .iter()
            .any(|w| w["detail"]["limit"] == "max_domains" && w["detail"]["used"] == 3),
        "{warnings:?}"
    );
    // An override raises it for this account only.
    admin
        .patch("/v1/customers/alice", json!({"limits": {"max_domains": 4}}))
        .await
        .expect(200);
    a.post("/v1/domains", json!({"name": "extra.example"}))
        .await
        .expect(201);
    a.post("/v1/domains", json!({"name": "extra2.example"}))
        .await
        .error(409, "limit_reached");
    admin
        .patch(
            "/v1/customers/alice",
            json!({"clear_limits": ["max_domains"]}),
        )
        .await
        .expect(200);
    admin.delete("/v1/plans/small").await.error(409, "in_use");

    // Resellers: plans within their own limits, assign only their own plans.
    admin
        .patch(
            "/v1/customers/resell",
            json!({"limits": {"max_domains": 10}}),
        )
        .await
        .expect(200);
    r.post(
        "/v1/plans",
        json!({"name": "resell-big", "limits": {"max_domains": 11}}),
    )
    .await
    .invalid("limits.max_domains");
    let rp = r
        .post(
            "/v1/plans",
            json!({"name": "resell-basic", "limits": {"max_domains": 2}}),
        )
        .await
        .expect(201);
    assert_eq!(rp["reseller"], "resell");
    assert_eq!(rp["limits"]["max_mailboxes"], 1000);
    r.post("/v1/customers", json!({"name": "carol"}))
        .await
        .expect(201);
    r.patch("/v1/customers/carol", json!({"plan": "small"}))
        .await
        .invalid("plan");
    r.patch("/v1/customers/carol", json!({"plan": "resell-basic"}))
        .await
        .expect(200);
    r.patch(
        "/v1/customers/carol",
        json!({"limits": {"max_domains": 50}}),
    )
    .await
    .invalid("limits.max_domains");
    let names: Vec<String> = r
        .list_all("/v1/plans")
        .await
        .iter()
        .map(|p| p["name"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(names, vec!["resell-basic".to_owned()]);
    r.patch("/v1/plans/small", json!({"limits": {"max_domains": 100}}))
        .await
        .error(404, "not_found");
    srv.stop().await;
}

/// A tar the controller accepts: one file of `len` bytes `seed`.
fn archive(seed: u8, len: usize) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    let mut h = tar::Header::new_ustar();
    h.set_size(len as u64);
    h.set_mode(0o644);
    let data = vec![seed; len];
    b.append_data(&mut h, "index.html", data.as_slice())
        .expect("tar");
    b.into_inner().expect("tar")
}

async fn upload(c: &Api, domain: &str, body: Vec<u8>) -> (u16, Value) {
    let resp = c
        .http
        .put(format!("{}/v1/sites/{domain}/content", c.url))
        .bearer_auth(c.token.as_deref().unwrap())
        .header("content-type", "application/x-tar")
        .body(body)
        .send()
        .await
        .unwrap();
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap_or(Value::Null))
}

fn archives(dir: &std::path::Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .map(|d| {
            d.filter_map(|e| e.ok())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

#[tokio::test]
async fn deployments_keep_three_per_site_and_count_against_the_limit() {
    let mut data_dir = None;
    let srv = Server::start_with(|c| data_dir = Some(c.data_dir.clone())).await;
    let dir = data_dir.unwrap().join("deployments");
    let admin = srv.admin();
    default_clusters(&admin).await;
    let a = customer(&srv, &admin, "alice", json!({})).await;
    for d in ["one.example", "two.example"] {
        a.post("/v1/domains", json!({"name": d})).await.expect(201);
        a.post("/v1/sites", json!({"domain": d})).await.expect(201);
    }
    for seed in 1..=5u8 {
        let (status, body) = upload(&a, "one.example", archive(seed, 1000)).await;
        assert_eq!(status, 200, "{body}");
    }
    // The same content again is no new archive.
    assert_eq!(upload(&a, "one.example", archive(5, 1000)).await.0, 200);
    assert_eq!(archives(&dir).len(), 3, "{:?}", archives(&dir));
    assert_eq!(upload(&a, "two.example", archive(9, 1000)).await.0, 200);
    assert_eq!(archives(&dir).len(), 4);

    // Deleting a site deletes its archives; deleting a domain too.
    a.delete("/v1/sites/one.example").await.expect(204);
    assert_eq!(archives(&dir).len(), 1, "{:?}", archives(&dir));
    a.delete("/v1/domains/two.example").await.expect(204);
    assert_eq!(archives(&dir), Vec::<String>::new());

    // The account's deployment disk: 1 MiB. A 2 MiB archive is refused with 413
    // naming the limit, and leaves nothing behind.
    admin
        .patch(
            "/v1/customers/alice",
            json!({"limits": {"deployment_disk_mb": 1}}),
        )
        .await
        .expect(200);
    a.post("/v1/domains", json!({"name": "three.example"}))
        .await
        .expect(201);
    a.post("/v1/sites", json!({"domain": "three.example"}))
        .await
        .expect(201);
    let (status, body) = upload(&a, "three.example", archive(1, 2 << 20)).await;
    assert_eq!(status, 413, "{body}");
    assert_eq!(body["field"], "deployment_disk_mb");
    assert_eq!(archives(&dir), Vec::<String>::new());
    // Two 400 KiB archives fit; a third does not (all three would be kept).
    assert_eq!(
        upload(&a, "three.example", archive(2, 400 << 10)).await.0,
        200
    );
    assert_eq!(
        upload(&a, "three.example", archive(3, 400 << 10)).await.0,
        200
    );
    let (status, body) = upload(&a, "three.example", archive(4, 400 << 10)).await;
    assert_eq!(status, 413, "{body}");
    assert_eq!(archives(&dir).len(), 2);
    srv.stop().await;
}
