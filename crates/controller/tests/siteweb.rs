//! A site's web settings through the API (issue 15): document root, HSTS, PHP
//! version and `php.ini` values, each bad value a 422 naming its field and rule,
//! the plan's ceilings, a PHP version checked against what the cluster's web
//! server reported through the real heartbeat endpoint, and the web server's
//! desired config carrying the settings (HSTS withheld with the internal CA's
//! certificate).

#![allow(clippy::unwrap_used)]

mod common;

use common::{Api, Server};
use proto::agent_v1::{DesiredConfig, RoleConfig, CONFIG_PATH, HEARTBEAT_PATH};
use serde_json::{json, Value};

/// A joined web server speaking the agent protocol (mutual TLS).
type Web = common::Joined;

async fn join(srv: &Server, admin: &Api) -> Web {
    common::join_agent(srv, admin, "web-1", "web-a").await
}

impl Web {
    async fn report(&self, php: Value) {
        let status = self
            .http
            .post(format!("{}{HEARTBEAT_PATH}", self.url))
            .json(&json!({
                "applied_revision": 1,
                "engines": [{"name": "web", "state": "ok", "detail": "test"}],
                "agent_version": "test",
                "report": {"role": "web", "php": php},
            }))
            .send()
            .await
            .unwrap()
            .status();
        assert_eq!(status, reqwest::StatusCode::OK);
    }

    /// The site as the web server's config carries it, once `ready` holds: the
    /// controller builds configs in the background after a write, so the first
    /// answers may still be the config from before it.
    async fn site_when(
        &self,
        domain: &str,
        ready: impl Fn(&proto::agent_v1::WebSite) -> bool,
    ) -> proto::agent_v1::WebSite {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(15);
        loop {
            let site = self.site(domain).await;
            if site.as_ref().is_some_and(&ready) || std::time::Instant::now() > deadline {
                return site.expect("the site is in the web server's config");
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
    }

    async fn site(&self, domain: &str) -> Option<proto::agent_v1::WebSite> {
        let res = self
            .http
            .get(format!("{}{CONFIG_PATH}?after=0", self.url))
            .send()
            .await
            .unwrap();
        let doc: DesiredConfig = serde_json::from_slice(&res.bytes().await.unwrap()).unwrap();
        match doc.role {
            RoleConfig::Web(w) => w
                .sites
                .into_iter()
                .find(|s| s.domain == domain)
                .map(|s| (*s).clone()),
            other => panic!("{other:?}"),
        }
    }
}

#[tokio::test]
async fn web_settings_are_checked_stored_shown_and_sent() {
    let srv = Server::start().await;
    let admin = srv.admin();
    common::default_clusters(&admin).await;
    let web = join(&srv, &admin).await;
    let acme = common::customer(&srv, &admin, "acme", json!({})).await;
    acme.post("/v1/domains", json!({"name": "shop.example"}))
        .await
        .expect(201);
    let v = acme
        .post("/v1/sites", json!({"domain": "shop.example", "php": true}))
        .await
        .expect(201);
    assert_eq!(v["docroot"], "/");
    assert_eq!(v["hsts"], false);
    // Bad values: 422 naming the field and the rule; nothing stored.
    for (body, field, rule) in [
        (json!({"docroot": "/var/www"}), "docroot", "absolute"),
        (json!({"docroot": "public/../.."}), "docroot", "dot_dot"),
        (json!({"docroot": "a//b"}), "docroot", "empty_part"),
        (json!({"docroot": "a\nb"}), "docroot", "bad_character"),
        (
            json!({"php_version": "8"}),
            "php_version",
            "bad_php_version",
        ),
        (
            json!({"php_version": "8.2"}),
            "php_version",
            "php_not_installed",
        ),
        (
            json!({"php_set": {"memory_limit": "8M"}}),
            "php_set.memory_limit",
            "out_of_range",
        ),
        (
            json!({"php_set": {"memory_limit": "1G"}}),
            "php_set.memory_limit",
            "over_plan",
        ),
        (
            json!({"php_set": {"upload_max_filesize": "big"}}),
            "php_set.upload_max_filesize",
            "bad_php_value",
        ),
        (
            json!({"php_set": {"max_execution_time": "301"}}),
            "php_set.max_execution_time",
            "over_plan",
        ),
        (
            json!({"php_set": {"open_basedir": "/"}}),
            "php_set.open_basedir",
            "unknown_php_setting",
        ),
        (
            json!({"php_set": {"date.timezone": "Mars/Base"}}),
            "php_set.date.timezone",
            "bad_php_value",
        ),
        (
            json!({"php_unset": ["disable_functions"]}),
            "php_unset[0]",
            "unknown_php_setting",
        ),
    ] {
        let e = acme
            .patch("/v1/sites/shop.example", body)
            .await
            .invalid(field);
        assert_eq!(e["rule"], rule, "{e}");
    }
    // The web server reports its PHP versions; 8.2 is accepted, 7.4 is not.
    web.report(json!([{"version": "8.2", "full": "8.2.36", "default": true}]))
        .await;
    let e = acme
        .patch("/v1/sites/shop.example", json!({"php_version": "7.4"}))
        .await
        .invalid("php_version");
    assert_eq!(e["rule"], "php_not_installed");
    assert!(
        e["message"].as_str().unwrap().contains("they have: 8.2"),
        "{e}"
    );
    let v = acme
        .patch(
            "/v1/sites/shop.example",
            json!({"docroot": "./public/", "hsts": true, "php_version": "8.2",
                   "php_set": {"upload_max_filesize": "128", "post_max_size": "128M",
                               "memory_limit": "256M", "display_errors": "on"}}),
        )
        .await
        .expect(200);
    assert_eq!(v["docroot"], "public", "normalised: {v}");
    assert_eq!(v["hsts"], true);
    assert_eq!(v["hsts_active"], false, "internal certificate: {v}");
    assert_eq!(v["php_version"], "8.2");
    assert_eq!(v["php_version_effective"], "8.2.36");
    assert_eq!(v["php_versions_available"], json!(["8.2"]));
    assert_eq!(v["php_ini"]["upload_max_filesize"], "128M");
    assert_eq!(v["php_ini"]["display_errors"], "on");
    // post_max_size below upload_max_filesize is refused.
    let e = acme
        .patch(
            "/v1/sites/shop.example",
            json!({"php_set": {"post_max_size": "64M"}}),
        )
        .await
        .invalid("php_set.post_max_size");
    assert_eq!(e["rule"], "post_below_upload");
    // The web server's config carries them; HSTS withheld (no trusted certificate).
    let site = web.site_when("shop.example", |s| s.docroot.is_some()).await;
    assert_eq!(site.docroot.as_deref(), Some("public"));
    assert_eq!(site.php_version.as_deref(), Some("8.2"));
    assert_eq!(site.php_ini["memory_limit"], "256M");
    assert!(!site.hsts, "never with the internal CA's certificate");
    // A bigger plan allows more; back to defaults with unset and `/`.
    admin
        .patch(
            "/v1/customers/acme",
            json!({"limits": {"php_memory_mb": 2048}}),
        )
        .await
        .expect(200);
    let v = acme
        .patch(
            "/v1/sites/shop.example",
            json!({"php_set": {"memory_limit": "1G"}, "php_unset": ["display_errors"],
                   "docroot": "/", "php_version": "default"}),
        )
        .await
        .expect(200);
    assert_eq!(v["php_ini"]["memory_limit"], "1024M");
    assert!(v["php_ini"].get("display_errors").is_none(), "{v}");
    assert_eq!(v["docroot"], "/");
    assert!(v.get("php_version").is_none(), "{v}");
    assert_eq!(v["php_version_effective"], "8.2.36", "the default: {v}");
}
