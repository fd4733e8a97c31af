//! A site's cron jobs through the API and the placement path (issue 15): bad
//! schedules and commands are 422s naming the field and the rule, another
//! customer's site is a 404, the plan's `cron_jobs` is a 409; the first job places
//! the site's cron runner on one web server of its cluster, draining or deleting
//! that server moves it (a `site.cron_move` event, a handover time one lease
//! ahead), the web servers' config names the holder, and a heartbeat grants the
//! lease only to a server that applied its current config.

#![allow(clippy::unwrap_used)]

mod common;

use common::{default_clusters, Api, Server};
use proto::agent_v1::{DesiredConfig, RoleConfig, CONFIG_PATH, HEARTBEAT_PATH};
use serde_json::{json, Value};

/// A joined web server speaking the agent protocol (mutual TLS).
type Web = common::Joined;

async fn join(srv: &Server, admin: &Api, name: &str) -> Web {
    common::join_agent(srv, admin, "web-1", name).await
}

impl Web {
    /// A heartbeat saying config `applied` is applied; the lease granted.
    async fn beat(&self, applied: i64) -> Option<u64> {
        let ack: Value = self
            .http
            .post(format!("{}{HEARTBEAT_PATH}", self.url))
            .json(&json!({
                "applied_revision": applied,
                "engines": [{"name": "web", "state": "ok", "detail": "test"}],
                "agent_version": "test",
            }))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        ack["cron_lease_secs"].as_u64()
    }

    async fn config(&self) -> DesiredConfig {
        let res = self
            .http
            .get(format!("{}{CONFIG_PATH}?after=0", self.url))
            .send()
            .await
            .unwrap();
        serde_json::from_slice(&res.bytes().await.unwrap()).unwrap()
    }

    /// The site's cron as this server's config carries it, once `ready` holds.
    async fn cron_when(
        &self,
        domain: &str,
        ready: impl Fn(&Option<proto::agent_v1::WebCron>) -> bool,
    ) -> (i64, Option<proto::agent_v1::WebCron>) {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(15);
        loop {
            let doc = self.config().await;
            let RoleConfig::Web(w) = doc.role else {
                panic!("not a web config")
            };
            let cron = w
                .sites
                .into_iter()
                .find(|s| s.domain == domain)
                .and_then(|s| s.cron.clone());
            if ready(&cron) || std::time::Instant::now() > deadline {
                assert!(ready(&cron), "config never got ready: {cron:?}");
                return (doc.revision, cron);
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
    }
}

async fn cron_moves(admin: &Api) -> Vec<(Value, Value, String)> {
    admin
        .list_all("/v1/events?limit=1000")
        .await
        .into_iter()
        .filter(|e| e["action"] == "site.cron_move")
        .map(|e| {
            (
                e["detail"]["from"].clone(),
                e["detail"]["to"].clone(),
                e["detail"]["reason"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

#[tokio::test]
async fn cron_jobs_are_checked_limited_placed_moved_and_leased() {
    let srv = Server::start().await;
    let admin = srv.admin();
    default_clusters(&admin).await;
    let web_a = join(&srv, &admin, "web-a").await;
    let web_b = join(&srv, &admin, "web-b").await;
    let acme = common::customer(&srv, &admin, "acme", json!({})).await;
    admin
        .patch("/v1/customers/acme", json!({"limits": {"cron_jobs": 2}}))
        .await
        .expect(200);
    let bob = common::customer(&srv, &admin, "bob", json!({})).await;
    acme.post("/v1/domains", json!({"name": "shop.example"}))
        .await
        .expect(201);
    acme.post(
        "/v1/sites",
        json!({"domain": "shop.example", "php": true, "mode": "all"}),
    )
    .await
    .expect(201);
    let path = "/v1/sites/shop.example/cron";

    // Bad input: 422 naming the field and the rule (the message names the cron field).
    for (body, field, rule, says) in [
        (
            json!({"schedule": "61 * * * *", "command": "php a.php"}),
            "schedule",
            "cron_range",
            "minute",
        ),
        (
            json!({"schedule": "* * 31 feb *", "command": "php a.php"}),
            "schedule",
            "cron_never",
            "day-of-month",
        ),
        (
            json!({"schedule": "* * *", "command": "php a.php"}),
            "schedule",
            "cron_fields",
            "5 fields",
        ),
        (
            json!({"schedule": "@reboot", "command": "php a.php"}),
            "schedule",
            "cron_macro",
            "@hourly",
        ),
        (
            json!({"schedule": "* * * * *", "command": "rm -rf /"}),
            "command",
            "cron_command",
            "no shell",
        ),
        (
            json!({"schedule": "* * * * *", "command": "php ../../etc/passwd"}),
            "command",
            "dot_part",
            "..",
        ),
        (
            json!({"schedule": "* * * * *", "command": "php /etc/passwd"}),
            "command",
            "absolute",
            "absolute",
        ),
    ] {
        let e = acme.post(path, body).await.invalid(field);
        assert_eq!(e["rule"], rule, "{e}");
        assert!(e["message"].as_str().unwrap().contains(says), "{e}");
    }
    assert!(acme
        .get(path)
        .await
        .expect(200)
        .as_array()
        .unwrap()
        .is_empty());

    // The first job places the runner on one of the two servers.
    let job = acme
        .post(
            path,
            json!({"schedule": "*/5  * * * *", "command": "php wp-cron.php"}),
        )
        .await
        .expect(201);
    assert_eq!(job["id"], 1);
    assert_eq!(job["schedule"], "*/5 * * * *");
    assert!(job["next_run"].as_str().unwrap().ends_with(":00Z"), "{job}");
    let holder = job["server"].as_str().unwrap().to_owned();
    assert!(holder == "web-a" || holder == "web-b");
    let (first, other) = if holder == "web-a" {
        (&web_a, "web-b")
    } else {
        (&web_b, "web-a")
    };

    // Another customer sees no such site.
    bob.get(path).await.error(404, "not_found");
    bob.post(
        path,
        json!({"schedule": "* * * * *", "command": "php x.php"}),
    )
    .await
    .error(404, "not_found");
    bob.delete(&format!("{path}/1"))
        .await
        .error(404, "not_found");

    // The plan's limit (2 here).
    acme.post(
        path,
        json!({"schedule": "@daily", "command": "GET /cron?x=1"}),
    )
    .await
    .expect(201);
    let e = acme
        .post(path, json!({"schedule": "@hourly", "command": "php c.php"}))
        .await
        .error(409, "limit_reached");
    assert_eq!(e["field"], "cron_jobs", "{e}");
    let list = acme.get(path).await.expect(200);
    assert_eq!(list.as_array().unwrap().len(), 2);
    assert_eq!(list[1]["command"], "GET /cron?x=1");
    acme.delete(&format!("{path}/2")).await.expect(204);
    acme.delete(&format!("{path}/2"))
        .await
        .error(404, "not_found");

    // Both servers' configs name the holder; the heartbeat grants the lease to a
    // server that applied its current config, not to one behind it.
    let (rev, cron) = first
        .cron_when("shop.example", |c| {
            c.as_ref().is_some_and(|c| c.jobs.len() == 1)
        })
        .await;
    let cron = cron.unwrap();
    assert_eq!(cron.holder.as_deref(), Some(holder.as_str()));
    assert_eq!(cron.not_before, 0);
    assert_eq!(cron.timeout_s, 300);
    assert_eq!(cron.jobs[0].command, "php wp-cron.php");
    // A build may land between reading the config and the heartbeat (the key
    // task's, say): then the server is behind again and rightly gets no lease, so
    // read the current revision again until one heartbeat finds it applied.
    let mut applied = rev;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(15);
    while first.beat(applied).await != Some(120) {
        assert!(
            std::time::Instant::now() < deadline,
            "no lease for a server that applied its current config"
        );
        applied = first.config().await.revision;
    }
    assert_eq!(first.beat(0).await, None);

    // Draining the holder moves the runner, to start one lease later.
    let before = time::OffsetDateTime::now_utc().unix_timestamp();
    admin
        .post(&format!("/v1/servers/{holder}/drain"), json!({}))
        .await
        .expect(200);
    let list = acme.get(path).await.expect(200);
    assert_eq!(list[0]["server"], other, "{list}");
    assert_eq!(
        cron_moves(&admin).await,
        vec![
            (Value::Null, json!(holder), "cron added".to_owned()),
            (json!(holder), json!(other), "drain".to_owned())
        ]
    );
    let (_, cron) = first
        .cron_when("shop.example", |c| {
            c.as_ref()
                .is_some_and(|c| c.holder.as_deref() == Some(other))
        })
        .await;
    let nb = cron.unwrap().not_before;
    assert!(
        nb >= before + 120 && nb <= before + 120 + 30,
        "{nb} vs {before}"
    );

    // Deleting the new holder leaves none (the other is drained) …
    admin
        .delete(&format!("/v1/servers/{other}"))
        .await
        .expect(204);
    assert!(acme.get(path).await.expect(200)[0]["server"].is_null());
    // … until the drained one is back, keeping the handover time.
    admin
        .post(&format!("/v1/servers/{holder}/undrain"), json!({}))
        .await
        .expect(200);
    assert_eq!(acme.get(path).await.expect(200)[0]["server"], holder);
    let (_, cron) = first
        .cron_when("shop.example", |c| {
            c.as_ref()
                .is_some_and(|c| c.holder.as_deref() == Some(holder.as_str()))
        })
        .await;
    assert!(cron.unwrap().not_before >= nb);
    // A site turned `single` runs its cron where it is active.
    let site = acme
        .patch("/v1/sites/shop.example", json!({"mode": "single"}))
        .await
        .expect(200);
    assert_eq!(site["active_server"], holder);
    assert_eq!(acme.get(path).await.expect(200)[0]["server"], holder);
    let moves = cron_moves(&admin).await;
    assert_eq!(
        moves[2..],
        [
            (json!(other), Value::Null, "server deleted".to_owned()),
            (Value::Null, json!(holder), "undrain".to_owned())
        ],
        "{moves:?}"
    );
    srv.stop().await;
}

/// Import site lines carry cron jobs under the API's rules: each job is checked
/// like `POST …/cron` (a bad one refuses the line naming `cron[i].…`), the plan's
/// `cron_jobs` holds, the runner is placed through the placement path after the
/// commit, and a re-run skips an identical line and refuses one whose jobs differ.
#[tokio::test]
async fn import_site_lines_take_cron_jobs_under_the_api_rules() {
    use common::{expect, import};
    let srv = Server::start().await;
    let admin = srv.admin();
    default_clusters(&admin).await;
    let _web = join(&srv, &admin, "web-a").await;
    let jobs = json!([
        {"schedule": "*/5  * * * *", "command": "php wp-cron.php"},
        {"schedule": "@daily", "command": "GET /cron/daily"},
    ]);
    let lines = vec![
        json!({"kind": "customer", "name": "imp"}),
        json!({"kind": "domain", "name": "wp.example", "customer": "imp"}),
        json!({"kind": "domain", "name": "bad1.example", "customer": "imp"}),
        json!({"kind": "domain", "name": "bad2.example", "customer": "imp"}),
        json!({"kind": "domain", "name": "bad3.example", "customer": "imp"}),
        // 6: two good jobs.
        json!({"kind": "site", "domain": "wp.example", "php": true, "mode": "all", "cron": jobs}),
        // 7: a bad schedule in the second job.
        json!({"kind": "site", "domain": "bad1.example", "cron": [
            {"schedule": "* * * * *", "command": "php a.php"},
            {"schedule": "61 * * * *", "command": "php a.php"}]}),
        // 8: a shell command.
        json!({"kind": "site", "domain": "bad2.example", "cron": [
            {"schedule": "* * * * *", "command": "bash -c id"}]}),
        // 9: more jobs than the plan allows (10 by default).
        json!({"kind": "site", "domain": "bad3.example", "cron":
            (0..11).map(|i| json!({"schedule": "* * * * *", "command": format!("php j{i}.php")})).collect::<Vec<_>>()}),
    ];
    let report = import(&admin, &lines, 1, false).await;
    expect(&report, 6, "created", "");
    expect(&report, 7, "refused", "cron[1].schedule");
    expect(&report, 8, "refused", "cron[0].command");
    expect(&report, 9, "refused", "cron_jobs");
    for bad in ["bad1", "bad2", "bad3"] {
        admin
            .get(&format!("/v1/sites/{bad}.example"))
            .await
            .expect(404);
    }

    // The jobs as the API shows them, numbered, normalised, placed on the server.
    let list = admin.get("/v1/sites/wp.example/cron").await.expect(200);
    let got: Vec<(Value, Value, Value, Value)> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|j| {
            (
                j["id"].clone(),
                j["schedule"].clone(),
                j["command"].clone(),
                j["server"].clone(),
            )
        })
        .collect();
    assert_eq!(
        got,
        vec![
            (
                json!(1),
                json!("*/5 * * * *"),
                json!("php wp-cron.php"),
                json!("web-a")
            ),
            (
                json!(2),
                json!("0 0 * * *"),
                json!("GET /cron/daily"),
                json!("web-a")
            ),
        ],
        "{list}"
    );
    // A job added later through the API gets the next id.
    let next = admin
        .post(
            "/v1/sites/wp.example/cron",
            json!({"schedule": "@hourly", "command": "php h.php"}),
        )
        .await
        .expect(201);
    assert_eq!(next["id"], 3, "{next}");
    admin
        .delete("/v1/sites/wp.example/cron/3")
        .await
        .expect(204);

    // A re-run skips the identical line and refuses one with other jobs.
    let again = import(&admin, &lines[..6], 1, false).await;
    expect(&again, 6, "skipped", "");
    let mut changed = lines[..6].to_vec();
    changed[5]["cron"] = json!([{"schedule": "*/5 * * * *", "command": "php wp-cron.php"}]);
    let report = import(&admin, &changed, 1, false).await;
    expect(&report, 6, "refused", "cron: stored");
}
