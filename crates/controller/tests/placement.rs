//! The one placement path through the API: deleting a server, moving a domain to
//! another web cluster, and draining every server re-place `single` sites with
//! `site.move` events (actor, from, to, reason), spread by load.

#![allow(clippy::unwrap_used)]

mod common;

use common::{default_clusters, Api, Server};
use serde_json::{json, Value};

async fn server(admin: &Api, name: &str, cluster: &str) {
    admin
        .post(
            "/v1/servers",
            json!({"name": name, "cluster": cluster, "hostname": format!("{name}.hosting.example"),
                   "addresses": ["192.0.2.10"], "country": "DE"}),
        )
        .await
        .expect(201);
}

async fn site(admin: &Api, domain: &str) -> Value {
    admin
        .post("/v1/domains", json!({"name": domain, "customer": "acme"}))
        .await
        .expect(201);
    admin
        .post("/v1/sites", json!({"domain": domain}))
        .await
        .expect(201)
}

async fn active(admin: &Api, domain: &str) -> Value {
    admin.get(&format!("/v1/sites/{domain}")).await.expect(200)["active_server"].clone()
}

/// `site.move` events after event id `after`: (site, from, to, reason).
async fn moves(admin: &Api, after: i64) -> Vec<(String, Value, Value, String)> {
    admin
        .list_all("/v1/events?limit=1000")
        .await
        .into_iter()
        .filter(|e| e["action"] == "site.move" && e["id"].as_i64().unwrap() > after)
        .map(|e| {
            (
                e["object"].as_str().unwrap().to_owned(),
                e["detail"]["from"].clone(),
                e["detail"]["to"].clone(),
                e["detail"]["reason"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

async fn last_event(admin: &Api) -> i64 {
    admin
        .list_all("/v1/events?limit=1000")
        .await
        .iter()
        .filter_map(|e| e["id"].as_i64())
        .max()
        .unwrap_or(0)
}

#[tokio::test]
async fn deleting_a_server_moves_its_sites_with_events() {
    let srv = Server::start().await;
    let admin = srv.admin();
    default_clusters(&admin).await;
    admin
        .post("/v1/customers", json!({"name": "acme"}))
        .await
        .expect(201);
    for w in ["w1", "w2", "w3"] {
        server(&admin, w, "web-1").await;
    }
    // Least-loaded first, ties to the oldest server.
    let mut on = Vec::new();
    for d in ["a.example", "b.example", "c.example", "d.example"] {
        on.push(site(&admin, d).await["active_server"].clone());
    }
    assert_eq!(on, [json!("w1"), json!("w2"), json!("w3"), json!("w1")]);

    let before = last_event(&admin).await;
    admin.delete("/v1/servers/w1").await.expect(204);
    // a and d leave w1, one to each of the two least-loaded servers.
    let mut m = moves(&admin, before).await;
    m.sort_by(|x, y| x.0.cmp(&y.0));
    assert_eq!(
        m,
        vec![
            (
                "a.example".into(),
                json!("w1"),
                json!("w2"),
                "server deleted".into()
            ),
            (
                "d.example".into(),
                json!("w1"),
                json!("w3"),
                "server deleted".into()
            ),
        ]
    );
    assert_eq!(active(&admin, "a.example").await, "w2");
    assert_eq!(active(&admin, "d.example").await, "w3");
    // Sites on other servers did not move.
    assert_eq!(active(&admin, "b.example").await, "w2");

    // The last servers go: their sites are left without one, with events and a warning.
    admin.delete("/v1/servers/w2").await.expect(204);
    let before = last_event(&admin).await;
    admin.delete("/v1/servers/w3").await.expect(204);
    let m = moves(&admin, before).await;
    assert_eq!(m.len(), 4, "{m:?}");
    assert!(m
        .iter()
        .all(|(_, from, to, _)| from == "w3" && to.is_null()));
    assert!(active(&admin, "a.example").await.is_null());
    let warnings = admin
        .list_all("/v1/events?limit=1000")
        .await
        .into_iter()
        .filter(|e| e["action"] == "placement.warning" && e["id"].as_i64().unwrap() > before)
        .count();
    assert_eq!(warnings, 4);

    // A new usable server: the failover loop (level-triggered, on health ticks)
    // places the unplaced sites on a later tick, with no request to trigger it.
    let before = last_event(&admin).await;
    server(&admin, "w4", "web-1").await;
    let mut placed = 0;
    for _ in 0..200 {
        placed = moves(&admin, before).await.len();
        if placed == 4 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert_eq!(placed, 4);
    let m = moves(&admin, before).await;
    assert!(
        m.iter()
            .all(|(_, from, to, r)| from.is_null() && to == "w4" && r == "health"),
        "{m:?}"
    );
    assert_eq!(active(&admin, "c.example").await, "w4");
    // Converged: later ticks (every 500 ms here) write nothing more.
    let settled = last_event(&admin).await;
    tokio::time::sleep(std::time::Duration::from_millis(1200)).await;
    let later: Vec<Value> = admin
        .list_all("/v1/events?limit=1000")
        .await
        .into_iter()
        .filter(|e| e["id"].as_i64().unwrap() > settled)
        .filter(|e| e["action"] == "site.move" || e["action"] == "placement.warning")
        .collect();
    assert!(later.is_empty(), "{later:?}");
    srv.stop().await;
}

#[tokio::test]
async fn moving_a_domain_re_places_its_site_with_events() {
    let srv = Server::start().await;
    let admin = srv.admin();
    default_clusters(&admin).await;
    admin
        .post("/v1/clusters", json!({"name": "web-2", "role": "web"}))
        .await
        .expect(201);
    admin
        .post("/v1/customers", json!({"name": "acme"}))
        .await
        .expect(201);
    server(&admin, "w1", "web-1").await;
    server(&admin, "x1", "web-2").await;
    server(&admin, "x2", "web-2").await;
    assert_eq!(site(&admin, "a.example").await["active_server"], "w1");
    let before = last_event(&admin).await;
    admin
        .patch(
            "/v1/domains/a.example",
            json!({"clusters": {"web": "web-2"}}),
        )
        .await
        .expect(200);
    assert_eq!(active(&admin, "a.example").await, "x1");
    assert_eq!(
        moves(&admin, before).await,
        vec![(
            "a.example".into(),
            json!("w1"),
            json!("x1"),
            "domain moved".into()
        )]
    );
    // Patching the same cluster again moves nothing.
    let before = last_event(&admin).await;
    admin
        .patch(
            "/v1/domains/a.example",
            json!({"clusters": {"web": "web-2"}}),
        )
        .await
        .expect(200);
    assert!(moves(&admin, before).await.is_empty());
    srv.stop().await;
}

/// Failover is level-triggered: a pass whose store write fails is retried on later
/// health ticks until it succeeds, without any request or health change to start it.
#[tokio::test]
async fn a_failed_pass_is_retried_on_later_ticks() {
    use sqlx::Connection;
    let srv = Server::start().await;
    let admin = srv.admin();
    default_clusters(&admin).await;
    admin
        .post("/v1/customers", json!({"name": "acme"}))
        .await
        .expect(201);
    server(&admin, "w1", "web-1").await;
    assert_eq!(site(&admin, "a.example").await["active_server"], "w1");
    // w1 drained with nowhere to go: the site stays, with a warning.
    admin
        .post("/v1/servers/w1/drain", json!({}))
        .await
        .expect(200);
    assert_eq!(active(&admin, "a.example").await, "w1");
    // Every write of a site fails from now on.
    let mut db = sqlx::SqliteConnection::connect(&srv.store_url)
        .await
        .unwrap();
    sqlx::query(
        "CREATE TRIGGER fail_site_writes BEFORE UPDATE ON objects WHEN OLD.kind = 'site' \
         BEGIN SELECT RAISE(ABORT, 'injected failure'); END",
    )
    .execute(&mut db)
    .await
    .unwrap();
    let before = last_event(&admin).await;
    // A usable server appears: the next tick's pass tries to move the site and fails.
    server(&admin, "w2", "web-1").await;
    tokio::time::sleep(std::time::Duration::from_millis(1200)).await;
    assert_eq!(active(&admin, "a.example").await, "w1");
    assert!(moves(&admin, before).await.is_empty());
    // The store works again: a later tick converges, with nothing else changed.
    sqlx::query("DROP TRIGGER fail_site_writes")
        .execute(&mut db)
        .await
        .unwrap();
    let mut m = Vec::new();
    for _ in 0..200 {
        m = moves(&admin, before).await;
        if !m.is_empty() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert_eq!(
        m,
        vec![(
            "a.example".into(),
            json!("w1"),
            json!("w2"),
            "health".into()
        )]
    );
    assert_eq!(active(&admin, "a.example").await, "w2");
    db.close().await.unwrap();
    srv.stop().await;
}
