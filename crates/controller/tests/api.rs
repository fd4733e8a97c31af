//! The controller's REST API end to end: a real server (init + serve, HTTPS with the
//! controller's own CA) in-process on 127.0.0.1 port 0, driven over reqwest.

#![allow(clippy::unwrap_used)]

mod common;

use common::{customer, default_clusters, Api, Server};
use serde_json::{json, Value};

#[tokio::test]
async fn login_whoami_tokens_and_revocation() {
    let srv = Server::start().await;
    let admin = srv.admin();
    let me = admin.get("/v1/auth/whoami").await.expect(200);
    assert_eq!(
        (me["account"].as_str(), me["kind"].as_str()),
        (Some("admin"), Some("admin"))
    );

    // No token, a malformed one, a well-formed unknown one: 401 with WWW-Authenticate.
    let anon = srv.client(None);
    let r = anon.get("/v1/auth/whoami").await;
    assert_eq!(r.headers["www-authenticate"], "Bearer");
    r.error(401, "unauthorized");
    srv.client(Some("hp_not_a_real_token"))
        .get("/v1/auth/whoami")
        .await
        .error(401, "unauthorized");
    let fake = format!("hp_0123456789abcdef_{}", "A".repeat(43));
    srv.client(Some(&fake))
        .get("/v1/status")
        .await
        .error(401, "unauthorized");

    // A customer with a password logs in.
    admin
        .post(
            "/v1/customers",
            json!({"name": "acme", "password": "correct horse battery"}),
        )
        .await
        .expect(201);
    let login = anon
        .post(
            "/v1/auth/login",
            json!({"account": "acme", "password": "correct horse battery", "token_name": "laptop"}),
        )
        .await
        .expect(201);
    let token = login["token"].as_str().unwrap().to_owned();
    assert!(token.starts_with("hp_"));
    assert_eq!(login["name"], "laptop");
    let acme = srv.client(Some(&token));
    let me = acme.get("/v1/auth/whoami").await.expect(200);
    assert_eq!(
        (me["account"].as_str(), me["kind"].as_str()),
        (Some("acme"), Some("customer"))
    );
    assert_eq!(me["token_id"], login["id"]);

    // Tokens: create another, list own only, revoke → 401 at once.
    let second = acme
        .post("/v1/tokens", json!({"name": "ci", "expires_in_days": 30}))
        .await
        .expect(201);
    assert!(second["expires_at"].is_string());
    let second_client = srv.client(Some(second["token"].as_str().unwrap()));
    second_client.get("/v1/auth/whoami").await.expect(200);
    let listed = acme.names("/v1/tokens", "account").await;
    assert_eq!(listed, vec!["acme", "acme"]);
    let all = admin.list_all("/v1/tokens").await;
    assert_eq!(all.len(), 3, "admin init token and acme's two: {all:?}");
    acme.delete(&format!("/v1/tokens/{}", second["id"].as_str().unwrap()))
        .await
        .expect(204);
    second_client
        .get("/v1/auth/whoami")
        .await
        .error(401, "unauthorized");
    // Customers cannot mint tokens for others, nor see admin tokens.
    acme.post("/v1/tokens", json!({"name": "x", "account": "admin"}))
        .await
        .error(403, "forbidden");
    let admin_token_id = admin.get("/v1/auth/whoami").await.expect(200)["token_id"]
        .as_str()
        .unwrap()
        .to_owned();
    acme.get(&format!("/v1/tokens/{admin_token_id}"))
        .await
        .error(404, "not_found");
    acme.delete(&format!("/v1/tokens/{admin_token_id}"))
        .await
        .error(404, "not_found");

    // Disabling the account stops its tokens.
    admin
        .patch("/v1/customers/acme", json!({"disabled": true}))
        .await
        .expect(200);
    acme.get("/v1/auth/whoami").await.error(401, "unauthorized");
    admin
        .patch("/v1/customers/acme", json!({"disabled": false}))
        .await
        .expect(200);
    acme.get("/v1/auth/whoami").await.expect(200);

    // Wrong passwords: 401 for the free attempts (5 per account and address, bad
    // tokens do not count), then 429 with Retry-After, even for the right password.
    for _ in 0..5 {
        anon.post(
            "/v1/auth/login",
            json!({"account": "acme", "password": "wrong password!"}),
        )
        .await
        .error(401, "unauthorized");
    }
    let r = anon
        .post(
            "/v1/auth/login",
            json!({"account": "acme", "password": "correct horse battery"}),
        )
        .await;
    let retry: u64 = r.headers["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((1..=60).contains(&retry));
    r.error(429, "too_many_requests");
    // Password failures never block tokens: a bad token is still just 401, and a
    // valid token never seen before (not cached) works from the same address.
    srv.client(Some(&fake))
        .get("/v1/status")
        .await
        .error(401, "unauthorized");
    let fresh = admin
        .post("/v1/tokens", json!({"name": "fresh", "account": "acme"}))
        .await
        .expect(201);
    srv.client(fresh["token"].as_str())
        .get("/v1/auth/whoami")
        .await
        .expect(200);
    admin.get("/v1/status").await.expect(200);
    srv.stop().await;
}

/// 24 concurrent wrong passwords from one address: each failure is reserved before
/// the password is checked, so only the free 5 are checked (401) and the rest are
/// refused (429); the right password from another address still works, as does
/// another account from the attacking address. The counts show in the status.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_wrong_passwords_are_throttled_per_account_and_address() {
    let srv = Server::start().await;
    let admin = srv.admin();
    for name in ["acme", "other"] {
        admin
            .post(
                "/v1/customers",
                json!({"name": name, "password": "correct horse battery"}),
            )
            .await
            .expect(201);
    }
    let attacker = srv.client_from(None, Some("127.0.0.1".parse().unwrap()));
    let attempts = (0..24).map(|i| {
        let c = attacker.clone();
        tokio::spawn(async move {
            c.post(
                "/v1/auth/login",
                json!({"account": "ACME", "password": format!("wrong guess {i}")}),
            )
            .await
        })
    });
    let mut codes = std::collections::BTreeMap::new();
    for a in attempts.collect::<Vec<_>>() {
        let r = a.await.unwrap();
        if r.status == 429 {
            assert!(r.headers.contains_key("retry-after"));
            assert_eq!(r.body["error"], "too_many_requests");
        }
        *codes.entry(r.status.as_u16()).or_insert(0) += 1;
    }
    assert_eq!(codes, [(401, 5), (429, 19)].into_iter().collect());
    // The right password works from another address, and another account from the
    // attacking one.
    srv.client_from(None, Some("127.0.0.2".parse().unwrap()))
        .post(
            "/v1/auth/login",
            json!({"account": "acme", "password": "correct horse battery"}),
        )
        .await
        .expect(201);
    attacker
        .post(
            "/v1/auth/login",
            json!({"account": "other", "password": "correct horse battery"}),
        )
        .await
        .expect(201);
    // Concurrent bad bearer tokens from one address: 10 free, the rest 429; a valid
    // token never seen before works from another address.
    let bad = format!("hp_0123456789abcdef_{}", "A".repeat(43));
    let guesses = (0..24).map(|_| {
        let c = srv.client_from(Some(&bad), Some("127.0.0.3".parse().unwrap()));
        tokio::spawn(async move { c.get("/v1/auth/whoami").await.status.as_u16() })
    });
    let mut codes = std::collections::BTreeMap::new();
    for g in guesses.collect::<Vec<_>>() {
        *codes.entry(g.await.unwrap()).or_insert(0) += 1;
    }
    assert_eq!(codes, [(401, 10), (429, 14)].into_iter().collect());
    let fresh = admin
        .post("/v1/tokens", json!({"name": "fresh", "account": "other"}))
        .await
        .expect(201);
    srv.client_from(fresh["token"].as_str(), Some("127.0.0.4".parse().unwrap()))
        .get("/v1/auth/whoami")
        .await
        .expect(200);
    // A valid token the cache has not seen, used by many requests at once from
    // the address that guessed (a client library's parallel calls): never
    // throttled, not even while its first verifications are in flight.
    let parallel = admin
        .post(
            "/v1/tokens",
            json!({"name": "parallel", "account": "other"}),
        )
        .await
        .expect(201);
    let calls = (0..24).map(|_| {
        let c = srv.client_from(
            parallel["token"].as_str(),
            Some("127.0.0.3".parse().unwrap()),
        );
        tokio::spawn(async move { c.get("/v1/auth/whoami").await.status.as_u16() })
    });
    for call in calls.collect::<Vec<_>>() {
        assert_eq!(call.await.unwrap(), 200);
    }
    let st = admin.get("/v1/status").await.expect(200);
    assert_eq!(st["login_throttle"]["failures"], 5);
    assert_eq!(st["login_throttle"]["refused"], 19);
    assert_eq!(st["login_throttle"]["sources"], 1);
    srv.stop().await;
}

/// A new password revokes the account's other tokens (the caller's own token stays
/// when it changes its own password), effective at once despite the token cache.
#[tokio::test]
async fn changing_a_password_revokes_the_other_tokens() {
    let srv = Server::start().await;
    let admin = srv.admin();
    let acme = customer(
        &srv,
        &admin,
        "acme",
        json!({"password": "correct horse battery"}),
    )
    .await;
    let anon = srv.client(None);
    let login = |pw: &'static str| {
        let anon = anon.clone();
        async move {
            anon.post("/v1/auth/login", json!({"account": "acme", "password": pw}))
                .await
                .expect(201)["token"]
                .as_str()
                .unwrap()
                .to_owned()
        }
    };
    let laptop = srv.client(Some(&login("correct horse battery").await));
    // Both tokens verified (and cached) before the change.
    laptop.get("/v1/auth/whoami").await.expect(200);
    acme.get("/v1/auth/whoami").await.expect(200);
    acme.patch(
        "/v1/customers/acme",
        json!({"password": "a brand new secret"}),
    )
    .await
    .expect(200);
    acme.get("/v1/auth/whoami").await.expect(200);
    laptop
        .get("/v1/auth/whoami")
        .await
        .error(401, "unauthorized");
    let phone = srv.client(Some(&login("a brand new secret").await));
    phone.get("/v1/auth/whoami").await.expect(200);
    // An admin setting it revokes every token of the account.
    admin
        .patch(
            "/v1/customers/acme",
            json!({"password": "the admin's choice"}),
        )
        .await
        .expect(200);
    acme.get("/v1/auth/whoami").await.error(401, "unauthorized");
    phone
        .get("/v1/auth/whoami")
        .await
        .error(401, "unauthorized");
    admin.get("/v1/auth/whoami").await.expect(200);
    srv.stop().await;
}

/// Free text refuses control characters and bidirectional overrides/isolates, naming
/// the field, in every handler (one rule in `model::FreeText`).
#[tokio::test]
async fn free_text_refuses_controls_and_bidi_overrides() {
    let srv = Server::start().await;
    let admin = srv.admin();
    let bads = [
        "evil\u{202E}gnp.exe",
        "a\u{2066}b\u{2069}",
        "x\u{7}y",
        "two\nlines",
        "c1\u{85}",
        "mark\u{200F}",
    ];
    for bad in bads {
        let b = admin
            .post(
                "/v1/customers",
                json!({"name": "acme", "display_name": bad}),
            )
            .await
            .error(422, "invalid");
        assert_eq!(
            (b["field"].as_str(), b["rule"].as_str()),
            (Some("display_name"), Some("bad_character")),
            "{bad:?}"
        );
    }
    admin
        .post(
            "/v1/customers",
            json!({"name": "acme", "display_name": "Acme Café — 名前"}),
        )
        .await
        .expect(201);
    let b = admin
        .patch("/v1/customers/acme", json!({"display_name": "x\u{202D}y"}))
        .await
        .error(422, "invalid");
    assert_eq!(b["field"], "display_name");
    let b = admin
        .post("/v1/tokens", json!({"name": "t\u{202E}x"}))
        .await
        .error(422, "invalid");
    assert_eq!(b["field"], "name");
    let b = admin
        .post(
            "/v1/clusters",
            json!({"name": "web", "role": "web", "description": "a\u{2067}b"}),
        )
        .await
        .error(422, "invalid");
    assert_eq!(b["field"], "description");
    srv.stop().await;
}

/// Issue 16: a mail cluster's client-facing host name is a valid host name, on
/// mail clusters only; shown to admins, removed with an empty string.
#[tokio::test]
async fn a_mail_clusters_hostname_is_checked_and_shown() {
    let srv = Server::start().await;
    let admin = srv.admin();
    let b = admin
        .post(
            "/v1/clusters",
            json!({"name": "web-x", "role": "web", "hostname": "web.hosting.example"}),
        )
        .await
        .invalid("hostname");
    assert_eq!(b["rule"], "mail_only", "{b}");
    for bad in ["not a name", "-x.example", "localhost"] {
        admin
            .post(
                "/v1/clusters",
                json!({"name": "mail-x", "role": "mail", "hostname": bad}),
            )
            .await
            .invalid("hostname");
    }
    let c = admin
        .post(
            "/v1/clusters",
            json!({"name": "mail-x", "role": "mail", "hostname": "Mail.Hosting.Example"}),
        )
        .await
        .expect(201);
    assert_eq!(c["hostname"], "mail.hosting.example");
    let c = admin
        .patch(
            "/v1/clusters/mail-x",
            json!({"hostname": "m.hosting.example"}),
        )
        .await
        .expect(200);
    assert_eq!(c["hostname"], "m.hosting.example");
    admin
        .patch("/v1/clusters/mail-x", json!({"hostname": "a b"}))
        .await
        .invalid("hostname");
    let c = admin
        .patch("/v1/clusters/mail-x", json!({"hostname": ""}))
        .await
        .expect(200);
    assert!(c.get("hostname").is_none(), "{c}");
    srv.stop().await;
}

#[tokio::test]
async fn malformed_requests_get_json_errors() {
    let srv = Server::start().await;
    let admin = srv.admin();
    // Unknown field → 400 naming it.
    let b = admin
        .post(
            "/v1/clusters",
            json!({"name": "web", "role": "web", "colour": "red"}),
        )
        .await
        .error(400, "invalid");
    assert_eq!(b["field"], "colour");
    assert!(b["message"].as_str().unwrap().contains("colour"), "{b}");
    // Wrong type, broken JSON → 400.
    admin
        .post("/v1/clusters", json!({"name": 5, "role": "web"}))
        .await
        .error(400, "invalid");
    let r = admin
        .http
        .post(format!("{}/v1/clusters", admin.url))
        .bearer_auth(admin.token.as_ref().unwrap())
        .header("content-type", "application/json")
        .body("{\"name\": ")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["error"], "invalid");
    // Wrong content type → 415.
    let r = admin
        .http
        .post(format!("{}/v1/clusters", admin.url))
        .bearer_auth(admin.token.as_ref().unwrap())
        .header("content-type", "text/plain")
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 415);
    assert_eq!(
        r.json::<Value>().await.unwrap()["error"],
        "unsupported_media_type"
    );
    // Too large → 413 JSON.
    let big = json!({"name": "web", "role": "web", "description": "x".repeat(2 * 1024 * 1024)});
    admin
        .post("/v1/clusters", big)
        .await
        .error(413, "payload_too_large");
    // Unknown route → 404 JSON, wrong method → 405 JSON, bad query → 400, bad cursor, bad limit.
    admin.get("/v1/nothing-here").await.error(404, "not_found");
    admin
        .call(reqwest::Method::PUT, "/v1/clusters", Some(json!({})))
        .await
        .error(405, "method_not_allowed");
    admin
        .get("/v1/clusters?bogus=1")
        .await
        .error(400, "invalid");
    admin
        .get("/v1/clusters?cursor=garbage")
        .await
        .error(400, "invalid");
    admin.get("/v1/clusters?limit=0").await.invalid("limit");
    admin.get("/v1/clusters?limit=1001").await.invalid("limit");
    // The OpenAPI document is public and lists the endpoints.
    let doc = srv.client(None).get("/v1/openapi.json").await.expect(200);
    for p in [
        "/v1/domains",
        "/v1/dns-records/{id}",
        "/v1/auth/login",
        "/v1/status",
        "/v1/clusters/{name}/tsig",
        "/v1/clusters/{name}/tsig/rotate",
    ] {
        assert!(doc["paths"][p].is_object(), "{p} missing from openapi");
    }
    assert!(doc["components"]["schemas"]["DomainView"].is_object());
    srv.stop().await;
}

#[tokio::test]
async fn placement_and_same_country_rule() {
    let srv = Server::start().await;
    let admin = srv.admin();
    admin
        .post("/v1/customers", json!({"name": "acme"}))
        .await
        .expect(201);
    // No clusters at all: infeasible, naming the role.
    let b = admin
        .post(
            "/v1/domains",
            json!({"name": "example.com", "customer": "acme"}),
        )
        .await
        .error(422, "infeasible");
    assert!(b["message"].as_str().unwrap().contains("cluster"), "{b}");

    for (name, role) in [
        ("web-a", "web"),
        ("web-b", "web"),
        ("dns-a", "dns"),
        ("mail-a", "mail"),
        ("files-a", "files"),
    ] {
        admin
            .post("/v1/clusters", json!({"name": name, "role": role}))
            .await
            .expect(201);
    }
    // Two web clusters and no default: infeasible until one is chosen.
    admin
        .post(
            "/v1/domains",
            json!({"name": "example.com", "customer": "acme"}),
        )
        .await
        .error(422, "infeasible");
    // Explicit.
    let d = admin
        .post(
            "/v1/domains",
            json!({"name": "example.com", "customer": "acme", "clusters": {"web": "web-b"}}),
        )
        .await
        .expect(201);
    assert_eq!(
        d["placements"],
        json!({"web": "web-b", "dns": "dns-a", "mail": "mail-a", "files": "files-a"})
    );
    // Wrong role or unknown cluster named explicitly → 422 on that field.
    admin
        .post(
            "/v1/domains",
            json!({"name": "x.com", "customer": "acme", "clusters": {"web": "dns-a"}}),
        )
        .await
        .invalid("clusters.web");
    admin
        .post(
            "/v1/domains",
            json!({"name": "x.com", "customer": "acme", "clusters": {"web": "nope"}}),
        )
        .await
        .invalid("clusters.web");
    // Operator default.
    admin
        .patch("/v1/clusters/web-a", json!({"default": true}))
        .await
        .expect(200);
    let d = admin
        .post(
            "/v1/domains",
            json!({"name": "two.example", "customer": "acme"}),
        )
        .await
        .expect(201);
    assert_eq!(d["placements"]["web"], "web-a");
    // Making web-b the default unsets web-a.
    let c = admin
        .patch("/v1/clusters/web-b", json!({"default": true}))
        .await
        .expect(200);
    assert_eq!(c["default"], true);
    assert_eq!(
        admin.get("/v1/clusters/web-a").await.expect(200)["default"],
        false
    );
    // Customer default wins over the operator's.
    admin
        .patch(
            "/v1/customers/acme",
            json!({"default_clusters": {"web": "web-a"}}),
        )
        .await
        .expect(200);
    let d = admin
        .post(
            "/v1/domains",
            json!({"name": "three.example", "customer": "acme"}),
        )
        .await
        .expect(201);
    assert_eq!(d["placements"]["web"], "web-a");
    // Moving a role (admins).
    let d = admin
        .patch(
            "/v1/domains/three.example",
            json!({"clusters": {"web": "web-b"}}),
        )
        .await
        .expect(200);
    assert_eq!(d["placements"]["web"], "web-b");

    // Servers: a DNS secondary in the primary's country is refused, unless forced.
    let ns = |name: &str, country: &str| json!({"name": name, "cluster": "dns-a", "hostname": format!("{name}.hosting.example"), "addresses": ["192.0.2.10"], "country": country});
    let s = admin.post("/v1/servers", ns("ns1", "GB")).await.expect(201);
    assert_eq!(
        (s["rank"].as_u64(), s["role"].as_str(), s["health"].as_str()),
        (Some(0), Some("dns"), Some("unknown"))
    );
    let b = admin
        .post("/v1/servers", ns("ns2", "gb"))
        .await
        .invalid("country");
    assert!(
        b["message"].as_str().unwrap().contains("same country"),
        "{b}"
    );
    admin.get("/v1/servers/ns2").await.error(404, "not_found");
    let mut forced = ns("ns2", "GB");
    forced["force"] = json!(true);
    let s = admin.post("/v1/servers", forced).await.expect(201);
    assert_eq!(s["rank"], 1);
    let events = admin.list_all("/v1/events").await;
    let warning = events
        .iter()
        .find(|e| e["action"] == "placement.warning")
        .expect("a warning event");
    assert_eq!(warning["object"], "ns2");
    assert!(
        warning["detail"]["warning"]
            .as_str()
            .unwrap()
            .contains("ns1"),
        "{warning}"
    );
    // Another country is fine; moving it into GB later is refused.
    admin.post("/v1/servers", ns("ns3", "US")).await.expect(201);
    admin
        .patch("/v1/servers/ns3", json!({"country": "GB"}))
        .await
        .invalid("country");
    admin
        .patch("/v1/servers/ns3", json!({"region": "us-east"}))
        .await
        .expect(200);
    // Web servers have no such rule; bad server input is named.
    admin
        .post("/v1/servers", json!({"name": "web-1", "cluster": "web-a", "hostname": "web-1.h.example", "addresses": ["not-an-ip"], "country": "GB"}))
        .await
        .invalid("addresses[0]");
    admin
        .post("/v1/servers", json!({"name": "web-1", "cluster": "web-a", "hostname": "web-1.h.example", "addresses": ["192.0.2.1"], "country": "XX"}))
        .await
        .invalid("country");
    let cluster = admin.get("/v1/clusters/dns-a").await.expect(200);
    assert_eq!(cluster["servers"], json!(["ns1", "ns2", "ns3"]));
    admin.get("/v1/servers?cluster=dns-a").await.expect(200);
    assert_eq!(
        admin.names("/v1/servers?cluster=dns-a", "name").await.len(),
        3
    );

    // A cluster with servers or placements cannot go.
    admin
        .delete("/v1/clusters/dns-a")
        .await
        .error(409, "in_use");
    admin
        .delete("/v1/clusters/web-a")
        .await
        .error(409, "in_use");
    admin
        .post("/v1/clusters", json!({"name": "spare", "role": "web"}))
        .await
        .expect(201);
    admin.delete("/v1/clusters/spare").await.expect(204);
    // A customer that owns domains cannot go either.
    admin
        .delete("/v1/customers/acme")
        .await
        .error(409, "in_use");
    let status = admin.get("/v1/status").await.expect(200);
    assert_eq!(status["counts"]["domain"], 3);
    assert_eq!(status["servers"].as_array().unwrap().len(), 3);
    srv.stop().await;
}

#[tokio::test]
async fn resources_crud_and_validation() {
    let srv = Server::start().await;
    let admin = srv.admin();
    default_clusters(&admin).await;
    let acme = customer(&srv, &admin, "acme", json!({"display_name": "ACME"})).await;

    // Domains (Unicode accepted and stored as A-labels).
    let d = acme
        .post("/v1/domains", json!({"name": "Bücher.Example"}))
        .await
        .expect(201);
    assert_eq!(
        (d["name"].as_str(), d["unicode"].as_str()),
        (Some("xn--bcher-kva.example"), Some("bücher.example"))
    );
    assert_eq!(d["customer"], "acme");
    acme.get("/v1/domains/b%C3%BCcher.example")
        .await
        .expect(200);
    acme.post("/v1/domains", json!({"name": "example.com"}))
        .await
        .expect(201);
    acme.post("/v1/domains", json!({"name": "example.com"}))
        .await
        .error(409, "conflict");
    acme.post("/v1/domains", json!({"name": "bad..name"}))
        .await
        .invalid("name");
    acme.post(
        "/v1/domains",
        json!({"name": "example.org", "customer": "someone-else"}),
    )
    .await
    .error(403, "forbidden");
    acme.patch(
        "/v1/domains/example.com",
        json!({"clusters": {"web": "web-1"}}),
    )
    .await
    .error(403, "forbidden");

    // Sites: aliases inside the customer's own domains only.
    let s = acme
        .post("/v1/sites", json!({"domain": "example.com", "aliases": ["www.example.com", "shop.xn--bcher-kva.example"], "php": true}))
        .await
        .expect(201);
    assert_eq!(
        (
            s["mode"].as_str(),
            s["php"].as_bool(),
            s["cluster"].as_str()
        ),
        (Some("single"), Some(true), Some("web-1"))
    );
    acme.post(
        "/v1/sites",
        json!({"domain": "xn--bcher-kva.example", "aliases": ["www.other.net"]}),
    )
    .await
    .invalid("aliases[0]");
    acme.post(
        "/v1/sites",
        json!({"domain": "xn--bcher-kva.example", "aliases": ["www.example.com"]}),
    )
    .await
    .error(409, "conflict");
    // A wildcard alias only under the site's own domain, one leading `*`.
    for bad in ["*.example.com", "a.*.xn--bcher-kva.example"] {
        acme.post(
            "/v1/sites",
            json!({"domain": "xn--bcher-kva.example", "aliases": [bad]}),
        )
        .await
        .invalid("aliases[0]");
    }
    acme.post("/v1/sites", json!({"domain": "example.com"}))
        .await
        .error(409, "conflict");
    acme.post(
        "/v1/sites",
        json!({"domain": "xn--bcher-kva.example", "mode": "sometimes"}),
    )
    .await
    .invalid("mode");
    let s = acme
        .patch(
            "/v1/sites/example.com",
            json!({"mode": "all", "aliases": ["www.example.com"]}),
        )
        .await
        .expect(200);
    assert_eq!(
        (s["mode"].as_str(), s["aliases"].as_array().unwrap().len()),
        (Some("all"), 1)
    );
    // The freed alias can be used by another site now.
    acme.post(
        "/v1/sites",
        json!({"domain": "xn--bcher-kva.example", "aliases": ["shop.xn--bcher-kva.example"]}),
    )
    .await
    .expect(201);

    // Mailboxes: generated password shown once; mailbox and alias never share an address.
    let m = acme
        .post("/v1/mailboxes", json!({"address": "Info@Example.com"}))
        .await
        .expect(201);
    assert_eq!(m["address"], "info@example.com");
    let generated = m["generated_password"].as_str().unwrap();
    assert!(generated.len() >= 16);
    let m = acme.get("/v1/mailboxes/info@example.com").await.expect(200);
    assert!(m.get("generated_password").is_none());
    assert_eq!(m["quota_mb"], 1024);
    let m = acme
        .post(
            "/v1/mailboxes",
            json!({"address": "bob@example.com", "password": "a good long password"}),
        )
        .await
        .expect(201);
    assert!(m.get("generated_password").is_none());
    acme.post("/v1/mailboxes", json!({"address": "a b@example.com"}))
        .await
        .invalid("address");
    acme.post("/v1/mailboxes", json!({"address": ".x@example.com"}))
        .await
        .invalid("address");
    // A mailbox is a folder named by its local part: `/` is refused here, by the
    // same rule the mail engine applies (issue 12: it used to freeze every tenant's
    // mail changes on the cluster).
    let e = acme
        .post("/v1/mailboxes", json!({"address": "a/b@example.com"}))
        .await
        .invalid("address");
    assert_eq!(e["rule"], "bad_character", "{e}");
    acme.post(
        "/v1/aliases",
        json!({"address": "a/b@example.com", "destinations": ["bob@example.com"]}),
    )
    .await
    .invalid("address");
    acme.post(
        "/v1/aliases",
        json!({"address": "c@example.com", "destinations": ["a/b@example.com"]}),
    )
    .await
    .invalid("destinations[0]");
    acme.post("/v1/mailboxes", json!({"address": "x@nothere.example"}))
        .await
        .invalid("address");
    acme.post(
        "/v1/mailboxes",
        json!({"address": "y@example.com", "password": "short"}),
    )
    .await
    .invalid("password");
    let m = acme
        .patch(
            "/v1/mailboxes/info@example.com",
            json!({"quota_mb": 10, "enabled": false}),
        )
        .await
        .expect(200);
    assert_eq!(
        (m["quota_mb"].as_u64(), m["enabled"].as_bool()),
        (Some(10), Some(false))
    );

    // Aliases.
    acme.post(
        "/v1/aliases",
        json!({"address": "info@example.com", "destinations": ["bob@example.com"]}),
    )
    .await
    .error(409, "conflict");
    let a = acme.post("/v1/aliases", json!({"address": "sales@example.com", "destinations": ["bob@example.com", "x@external.net"]})).await.expect(201);
    assert_eq!(a["destinations"].as_array().unwrap().len(), 2);
    acme.post("/v1/mailboxes", json!({"address": "sales@example.com"}))
        .await
        .error(409, "conflict");
    acme.post(
        "/v1/aliases",
        json!({"address": "z@example.com", "destinations": []}),
    )
    .await
    .invalid("destinations");
    acme.post(
        "/v1/aliases",
        json!({"address": "z@example.com", "destinations": ["nope"]}),
    )
    .await
    .invalid("destinations[0]");
    acme.patch(
        "/v1/aliases/sales@example.com",
        json!({"destinations": ["bob@example.com"]}),
    )
    .await
    .expect(200);

    // Databases and users: identifiers that could inject are refused.
    let db = acme
        .post(
            "/v1/databases",
            json!({"name": "shop", "engine": "mariadb", "domain": "example.com"}),
        )
        .await
        .expect(201);
    assert_eq!(
        (db["cluster"].as_str(), db["domain"].as_str()),
        (Some("db-1"), Some("example.com"))
    );
    acme.post(
        "/v1/databases",
        json!({"name": "x; DROP DATABASE y", "engine": "mariadb"}),
    )
    .await
    .invalid("name");
    acme.post(
        "/v1/databases",
        json!({"name": "a`b", "engine": "postgres"}),
    )
    .await
    .invalid("name");
    acme.post(
        "/v1/databases",
        json!({"name": "ok_name", "engine": "oracle"}),
    )
    .await
    .invalid("engine");
    acme.post(
        "/v1/databases",
        json!({"name": "shop", "engine": "mariadb"}),
    )
    .await
    .error(409, "conflict");
    acme.post(
        "/v1/databases",
        json!({"name": "pgshop", "engine": "postgres"}),
    )
    .await
    .expect(201);
    let u = acme
        .post(
            "/v1/db-users",
            json!({"name": "shop_rw", "engine": "mariadb", "databases": ["shop"]}),
        )
        .await
        .expect(201);
    assert!(u["generated_password"].is_string());
    assert_eq!(u["databases"], json!(["shop"]));
    acme.post(
        "/v1/db-users",
        json!({"name": "bad", "engine": "mariadb", "databases": ["pgshop"]}),
    )
    .await
    .invalid("databases[0]");
    acme.post("/v1/db-users", json!({"name": "x'y", "engine": "mariadb"}))
        .await
        .invalid("name");
    acme.post(
        "/v1/db-users",
        json!({"name": "pg_user", "engine": "postgres"}),
    )
    .await
    .invalid("name");
    let u = acme.post("/v1/db-users", json!({"name": "pg_rw_user", "engine": "postgres", "password": "another long password"})).await;
    // `pg_` prefix is reserved.
    u.invalid("name");
    acme.post("/v1/db-users", json!({"name": "pgrw", "engine": "postgres", "password": "another long password", "databases": ["pgshop"]})).await.expect(201);
    // Without `engine`, the granted databases decide it; they must share one.
    let u = acme
        .post(
            "/v1/db-users",
            json!({"name": "pgro", "databases": ["pgshop"]}),
        )
        .await
        .expect(201);
    assert_eq!(u["engine"], "postgres");
    acme.post(
        "/v1/db-users",
        json!({"name": "mixed", "databases": ["pgshop", "shop"]}),
    )
    .await
    .invalid("databases[1]");
    acme.post("/v1/db-users", json!({"name": "noengine"}))
        .await
        .invalid("engine");
    acme.post(
        "/v1/db-users",
        json!({"name": "nodb", "databases": ["nosuchdb"]}),
    )
    .await
    .invalid("databases[0]");
    acme.delete("/v1/db-users/pgro").await.expect(204);
    acme.patch(
        "/v1/db-users/shop_rw",
        json!({"databases": [], "password": "a fresh long password"}),
    )
    .await
    .expect(200);
    acme.patch("/v1/databases/shop", json!({"domain": ""}))
        .await
        .expect(200);
    assert!(acme
        .get("/v1/databases/shop")
        .await
        .expect(200)
        .get("domain")
        .is_none());

    // FTP accounts.
    let f = acme
        .post(
            "/v1/ftp-accounts",
            json!({"username": "acme-ftp", "domain": "example.com", "home": "public/img"}),
        )
        .await
        .expect(201);
    assert_eq!(
        (f["home"].as_str(), f["generated_password"].is_string()),
        (Some("public/img"), true)
    );
    acme.post(
        "/v1/ftp-accounts",
        json!({"username": "evil", "domain": "example.com", "home": "../etc"}),
    )
    .await
    .invalid("home");
    acme.post(
        "/v1/ftp-accounts",
        json!({"username": "Evil!", "domain": "example.com"}),
    )
    .await
    .invalid("username");
    acme.patch(
        "/v1/ftp-accounts/acme-ftp",
        json!({"home": "", "quota_mb": 500}),
    )
    .await
    .expect(200);

    // DNS records, with coexistence rules.
    let www = acme.post("/v1/dns-records", json!({"domain": "example.com", "name": "www", "ttl": 300, "data": {"type": "A", "address": "192.0.2.1"}})).await.expect(201);
    assert_eq!(
        (www["type"].as_str(), www["ttl"].as_u64()),
        (Some("A"), Some(300))
    );
    let b = acme.post("/v1/dns-records", json!({"domain": "example.com", "name": "www", "data": {"type": "CNAME", "target": "x.example.net"}})).await.invalid("data");
    assert_eq!(b["rule"], "cname_conflict");
    acme.post("/v1/dns-records", json!({"domain": "example.com", "name": "@", "data": {"type": "CNAME", "target": "x.example.net"}})).await.invalid("name");
    acme.post("/v1/dns-records", json!({"domain": "example.com", "name": "sub", "data": {"type": "NS", "target": "ns1.other.net"}})).await.expect(201);
    let b = acme.post("/v1/dns-records", json!({"domain": "example.com", "name": "x.sub", "data": {"type": "TXT", "text": "hi"}})).await.invalid("name");
    assert_eq!(b["rule"], "below_delegation");
    acme.post("/v1/dns-records", json!({"domain": "example.com", "name": "x", "data": {"type": "A", "address": "300.1.1.1"}})).await.invalid("data");
    acme.post(
        "/v1/dns-records",
        json!({"domain": "example.com", "name": "x", "data": {"type": "TXT", "text": ""}}),
    )
    .await
    .invalid("data.text");
    acme.post(
        "/v1/dns-records",
        json!({"domain": "example.com", "name": "x", "data": {"type": "BOGUS"}}),
    )
    .await
    .invalid("data");
    acme.post("/v1/dns-records", json!({"domain": "example.com", "name": "x", "ttl": 5, "data": {"type": "A", "address": "192.0.2.2"}})).await.invalid("ttl");
    acme.post("/v1/dns-records", json!({"domain": "example.com", "name": "a..b", "data": {"type": "A", "address": "192.0.2.2"}})).await.invalid("name");
    let mx = acme.post("/v1/dns-records", json!({"domain": "example.com", "name": "@", "data": {"type": "MX", "preference": 10, "exchange": "mx.example.net"}})).await.expect(201);
    let id = mx["id"].as_i64().unwrap();
    let mx = acme.patch(&format!("/v1/dns-records/{id}"), json!({"data": {"type": "MX", "preference": 20, "exchange": "mx2.example.net"}, "ttl": 600})).await.expect(200);
    assert_eq!(
        (mx["data"]["preference"].as_u64(), mx["ttl"].as_u64()),
        (Some(20), Some(600))
    );
    acme.patch(
        &format!("/v1/dns-records/{}", www["id"]),
        json!({"data": {"type": "CNAME", "target": "y.example.net"}}),
    )
    .await
    .expect(200);
    assert_eq!(
        acme.list_all("/v1/dns-records?domain=example.com")
            .await
            .len(),
        3
    );

    // Listings with filters.
    assert_eq!(
        acme.names("/v1/mailboxes?domain=example.com", "address")
            .await,
        vec!["info@example.com", "bob@example.com"]
    );
    assert_eq!(
        admin.names("/v1/domains?customer=acme", "name").await.len(),
        2
    );

    // Deletes; deleting a domain removes its children.
    acme.delete("/v1/mailboxes/bob@example.com")
        .await
        .expect(204);
    acme.get("/v1/mailboxes/bob@example.com")
        .await
        .error(404, "not_found");
    acme.delete("/v1/aliases/sales@example.com")
        .await
        .expect(204);
    acme.delete(&format!("/v1/dns-records/{id}"))
        .await
        .expect(204);
    acme.delete("/v1/ftp-accounts/acme-ftp").await.expect(204);
    acme.delete("/v1/db-users/shop_rw").await.expect(204);
    acme.delete("/v1/databases/shop").await.expect(204);
    acme.delete("/v1/sites/xn--bcher-kva.example")
        .await
        .expect(204);
    acme.delete("/v1/domains/example.com").await.expect(204);
    for path in [
        "/v1/sites",
        "/v1/mailboxes",
        "/v1/dns-records",
        "/v1/ftp-accounts",
    ] {
        assert!(
            acme.list_all(path).await.is_empty(),
            "{path} kept children of a deleted domain"
        );
    }
    // Customer deletion: refused while it owns domains/databases, then allowed.
    admin
        .delete("/v1/customers/acme")
        .await
        .error(409, "in_use");
    acme.delete("/v1/domains/xn--bcher-kva.example")
        .await
        .expect(204);
    acme.delete("/v1/databases/pgshop").await.expect(204);
    admin.delete("/v1/customers/acme").await.expect(204);
    acme.get("/v1/auth/whoami").await.error(401, "unauthorized");
    srv.stop().await;
}

#[tokio::test]
async fn pagination_follows_cursors() {
    let srv = Server::start().await;
    let admin = srv.admin();
    for i in 0..25 {
        admin
            .post("/v1/customers", json!({"name": format!("c{i:02}")}))
            .await
            .expect(201);
    }
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    let mut pages = 0;
    loop {
        let path = match &cursor {
            Some(c) => format!("/v1/customers?limit=10&cursor={c}"),
            None => "/v1/customers?limit=10".to_owned(),
        };
        let page = admin.get(&path).await.expect(200);
        pages += 1;
        let items = page["items"].as_array().unwrap();
        assert!(items.len() <= 10);
        seen.extend(items.iter().map(|c| c["name"].as_str().unwrap().to_owned()));
        match page["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => break,
        }
    }
    // 25 customers + the admin = 26 accounts: 3 pages, each exactly once.
    assert_eq!(pages, 3);
    assert_eq!(seen.len(), 26);
    let mut dedup = seen.clone();
    dedup.sort();
    dedup.dedup();
    assert_eq!(dedup.len(), 26);
    // An exact multiple has no empty trailing page.
    let page = admin.get("/v1/customers?limit=26").await.expect(200);
    assert!(page.get("next_cursor").is_none(), "{page}");
    let events = admin.get("/v1/events?limit=5").await.expect(200);
    assert_eq!(events["items"].as_array().unwrap().len(), 5);
    assert!(events["next_cursor"].is_string());
    srv.stop().await;
}

/// Everything a customer owns, for the isolation matrix.
async fn populate(c: &Api, tag: &str) -> Value {
    let domain = format!("{tag}.example");
    c.post("/v1/domains", json!({"name": domain}))
        .await
        .expect(201);
    c.post("/v1/sites", json!({"domain": domain}))
        .await
        .expect(201);
    c.post(
        "/v1/mailboxes",
        json!({"address": format!("info@{domain}")}),
    )
    .await
    .expect(201);
    c.post(
        "/v1/aliases",
        json!({"address": format!("sales@{domain}"), "destinations": [format!("info@{domain}")]}),
    )
    .await
    .expect(201);
    c.post(
        "/v1/databases",
        json!({"name": format!("{tag}_db"), "engine": "mariadb"}),
    )
    .await
    .expect(201);
    c.post("/v1/db-users", json!({"name": format!("{tag}_user"), "engine": "mariadb", "databases": [format!("{tag}_db")]})).await.expect(201);
    c.post(
        "/v1/ftp-accounts",
        json!({"username": format!("{tag}-ftp"), "domain": domain}),
    )
    .await
    .expect(201);
    let rec = c
        .post(
            "/v1/dns-records",
            json!({"domain": domain, "name": "www", "data": {"type": "A", "address": "192.0.2.7"}}),
        )
        .await
        .expect(201);
    let tok = c
        .post("/v1/tokens", json!({"name": "extra"}))
        .await
        .expect(201);
    json!({
        "domain": domain,
        "paths": [
            format!("/v1/domains/{domain}"),
            format!("/v1/sites/{domain}"),
            format!("/v1/mailboxes/info@{domain}"),
            format!("/v1/aliases/sales@{domain}"),
            format!("/v1/databases/{tag}_db"),
            format!("/v1/db-users/{tag}_user"),
            format!("/v1/ftp-accounts/{tag}-ftp"),
            format!("/v1/dns-records/{}", rec["id"]),
            format!("/v1/tokens/{}", tok["id"].as_str().unwrap()),
        ],
    })
}

/// A harmless but valid PATCH body per resource.
fn patch_body(path: &str) -> Value {
    match path.split('/').nth(2).unwrap_or_default() {
        "domains" => json!({"clusters": {}}),
        "sites" => json!({"php": true}),
        "mailboxes" => json!({"quota_mb": 1}),
        "aliases" => json!({"destinations": ["evil@attacker.example"]}),
        "databases" => json!({"domain": ""}),
        "db-users" => json!({"databases": []}),
        "ftp-accounts" => json!({"quota_mb": 1}),
        "dns-records" => json!({"ttl": 60}),
        _ => json!({}),
    }
}

const LISTINGS: &[(&str, &str)] = &[
    ("/v1/domains", "name"),
    ("/v1/sites", "domain"),
    ("/v1/mailboxes", "address"),
    ("/v1/aliases", "address"),
    ("/v1/databases", "name"),
    ("/v1/db-users", "name"),
    ("/v1/ftp-accounts", "username"),
    ("/v1/dns-records", "domain"),
    ("/v1/tokens", "account"),
    ("/v1/customers", "name"),
];

#[tokio::test]
async fn tenant_isolation_matrix() {
    // TXT proofs of control are asked of a closed local port (answers: refused).
    let srv = Server::start_with(|c| c.names.resolver = Some("127.0.0.1:9".parse().unwrap())).await;
    let admin = srv.admin();
    default_clusters(&admin).await;
    let a = customer(&srv, &admin, "alice", json!({})).await;
    let b = customer(&srv, &admin, "bob", json!({})).await;
    let r = customer(&srv, &admin, "reseller", json!({"kind": "reseller"})).await;
    r.post("/v1/customers", json!({"name": "carol"}))
        .await
        .expect(201);
    let c_token = r
        .post(
            "/v1/tokens",
            json!({"name": "for-carol", "account": "carol"}),
        )
        .await
        .expect(201);
    let c = srv.client(Some(c_token["token"].as_str().unwrap()));

    populate(&a, "alice").await;
    let bob = populate(&b, "bob").await;
    populate(&c, "carol").await;

    let paths: Vec<String> = bob["paths"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p.as_str().unwrap().to_owned())
        .collect();
    let mut before = Vec::new();
    for p in &paths {
        before.push(b.get(p).await.expect(200));
    }
    // Alice (and the reseller, who does not manage bob) see none of it.
    for attacker in [&a, &r, &c] {
        for p in &paths {
            attacker.get(p).await.error(404, "not_found");
            if p.starts_with("/v1/tokens/") {
                // Tokens cannot be changed at all.
                attacker
                    .patch(p, patch_body(p))
                    .await
                    .error(405, "method_not_allowed");
            } else {
                attacker
                    .patch(p, patch_body(p))
                    .await
                    .error(404, "not_found");
            }
            attacker.delete(p).await.error(404, "not_found");
        }
        attacker
            .get("/v1/customers/bob")
            .await
            .error(404, "not_found");
        attacker
            .patch("/v1/customers/bob", json!({"display_name": "pwned"}))
            .await
            .error(404, "not_found");
        // Nor can anyone add a name under bob's domain (the www hijack).
        let body = if std::ptr::eq(attacker, &r) {
            json!({"name": "www.bob.example", "customer": "carol"})
        } else {
            json!({"name": "www.bob.example"})
        };
        let e = attacker
            .post("/v1/domains", body)
            .await
            .error(409, "conflict");
        assert_eq!(e["rule"], "owned_by_another_account", "{e}");
    }
    // Bob's objects are unchanged.
    for (p, old) in paths.iter().zip(&before) {
        assert_eq!(&b.get(p).await.expect(200), old, "{p} changed");
    }
    // Listings never contain another tenant's objects.
    for (path, key) in LISTINGS {
        let names = a.names(path, key).await;
        assert!(!names.is_empty(), "{path} empty for alice");
        assert!(
            names
                .iter()
                .all(|n| !n.contains("bob") && !n.contains("carol")),
            "{path}: {names:?}"
        );
    }
    // The reseller sees carol's things but not alice's or bob's.
    for (path, key) in LISTINGS {
        let names = r.names(path, key).await;
        assert!(
            names
                .iter()
                .all(|n| !n.contains("alice") && !n.contains("bob")),
            "{path}: {names:?}"
        );
    }
    assert!(r
        .names("/v1/domains", "name")
        .await
        .contains(&"carol.example".to_owned()));
    r.get("/v1/mailboxes/info@carol.example").await.expect(200);
    r.get("/v1/customers/carol").await.expect(200);
    // A filter naming another tenant is refused like an unknown one.
    a.get("/v1/domains?customer=bob").await.invalid("customer");
    a.get("/v1/mailboxes?domain=bob.example")
        .await
        .invalid("domain");
    // Creating objects in another tenant's domain or for another customer fails.
    a.post("/v1/mailboxes", json!({"address": "x@bob.example"}))
        .await
        .invalid("address");
    a.post("/v1/dns-records", json!({"domain": "bob.example", "name": "x", "data": {"type": "A", "address": "192.0.2.9"}})).await.invalid("domain");
    a.post(
        "/v1/db-users",
        json!({"name": "steal", "engine": "mariadb", "databases": ["bob_db"]}),
    )
    .await
    .invalid("databases[0]");
    a.post(
        "/v1/sites",
        json!({"domain": "alice.example", "aliases": ["www.bob.example"]}),
    )
    .await
    .invalid("aliases[0]");
    a.post(
        "/v1/databases",
        json!({"name": "x_db", "engine": "mariadb", "customer": "bob"}),
    )
    .await
    .error(403, "forbidden");
    r.post(
        "/v1/domains",
        json!({"name": "r.example", "customer": "alice"}),
    )
    .await
    .invalid("customer");
    // Resellers create customers only; customers create no accounts.
    r.post(
        "/v1/customers",
        json!({"name": "evil-admin", "kind": "admin"}),
    )
    .await
    .error(403, "forbidden");
    a.post("/v1/customers", json!({"name": "sub"}))
        .await
        .error(403, "forbidden");
    // Operator endpoints.
    for client in [&a, &r] {
        client
            .post("/v1/clusters", json!({"name": "mine", "role": "web"}))
            .await
            .error(403, "forbidden");
        client
            .patch("/v1/clusters/web-1", json!({"description": "x"}))
            .await
            .error(403, "forbidden");
        client
            .delete("/v1/clusters/web-1")
            .await
            .error(403, "forbidden");
        client
            .post("/v1/servers", json!({"name": "s", "cluster": "web-1", "hostname": "s.example", "addresses": ["192.0.2.1"], "country": "GB"}))
            .await
            .error(403, "forbidden");
        client.get("/v1/servers").await.error(403, "forbidden");
        let status = client.get("/v1/status").await.expect(200);
        assert!(status["clusters"].as_array().unwrap().is_empty());
    }
    let status = a.get("/v1/status").await.expect(200);
    assert_eq!(status["counts"]["domain"], 1);
    // Events of other tenants stay hidden.
    let events = a.list_all("/v1/events").await;
    assert!(!events.is_empty());
    assert!(
        events
            .iter()
            .all(|e| !e["object"].as_str().unwrap_or_default().contains("bob")),
        "{events:?}"
    );
    srv.stop().await;
}

#[tokio::test]
async fn site_certificates_upload_check_and_isolation() {
    use reqwest::Method;
    let srv = Server::start().await;
    let admin = srv.admin();
    default_clusters(&admin).await;
    let a = customer(&srv, &admin, "alice", json!({})).await;
    let b = customer(&srv, &admin, "bob", json!({})).await;
    a.post("/v1/domains", json!({"name": "alice.example"}))
        .await
        .expect(201);
    a.post("/v1/sites", json!({"domain": "alice.example"}))
        .await
        .expect(201);
    let path = "/v1/sites/alice.example/certificate";
    let shown = a.get(path).await.expect(200);
    assert_ne!(shown["source"], "uploaded");

    let key = rcgen::KeyPair::generate().unwrap();
    let cert = rcgen::CertificateParams::new(vec!["alice.example".to_owned()])
        .unwrap()
        .self_signed(&key)
        .unwrap();
    let body = json!({"cert_pem": cert.pem(), "key_pem": key.serialize_pem()});
    // Someone else's key, a wrong name, unknown fields: 422 naming the field.
    let other = rcgen::KeyPair::generate().unwrap();
    a.call(
        Method::PUT,
        path,
        Some(json!({"cert_pem": cert.pem(), "key_pem": other.serialize_pem()})),
    )
    .await
    .invalid("key_pem");
    let wrong = rcgen::CertificateParams::new(vec!["bob.example".to_owned()])
        .unwrap()
        .self_signed(&other)
        .unwrap();
    a.call(
        Method::PUT,
        path,
        Some(json!({"cert_pem": wrong.pem(), "key_pem": other.serialize_pem()})),
    )
    .await
    .invalid("cert_pem");
    // Bob can neither see nor replace nor delete alice's certificate.
    b.get(path).await.error(404, "not_found");
    b.call(Method::PUT, path, Some(body.clone()))
        .await
        .error(404, "not_found");
    b.delete(path).await.error(404, "not_found");

    let up = a.call(Method::PUT, path, Some(body)).await.expect(200);
    assert_eq!(up["source"], "uploaded");
    assert_eq!(up["names"], json!(["alice.example"]));
    assert!(up.get("key_pem").is_none(), "keys are never shown");
    assert_eq!(a.get(path).await.expect(200)["source"], "uploaded");
    a.delete(path).await.expect(204);
    assert_ne!(a.get(path).await.expect(200)["source"], "uploaded");
    a.delete(path).await.error(404, "not_found");
    srv.stop().await;
}

#[tokio::test]
async fn database_quotas_are_set_by_the_provider_not_the_customer() {
    let srv = Server::start().await;
    let admin = srv.admin();
    default_clusters(&admin).await;
    let a = customer(&srv, &admin, "alice", json!({"db_quota_mb": 500})).await;
    assert_eq!(
        admin.get("/v1/customers/alice").await.expect(200)["db_quota_mb"],
        500
    );
    a.patch("/v1/customers/alice", json!({"db_quota_mb": 100000}))
        .await
        .error(403, "forbidden");
    a.patch("/v1/customers/alice", json!({"display_name": "Alice"}))
        .await
        .expect(200);
    admin
        .patch("/v1/customers/alice", json!({"db_quota_mb": 0}))
        .await
        .expect(200);
    assert!(admin.get("/v1/customers/alice").await.expect(200)["db_quota_mb"].is_null());
    srv.stop().await;
}
