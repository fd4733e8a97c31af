//! Sign-in security over the real API (a controller on 127.0.0.1 port 0, HTTPS):
//! TOTP two-factor enrolment, login with a code or a recovery code (each once),
//! disabling it; impersonation scopes and its audit entries under both names.

#![allow(clippy::unwrap_used)]

mod common;

use common::{customer, default_clusters, Server};
use controller::totp;
use serde_json::{json, Value};

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

/// The secret out of an `otpauth://` URI, as an authenticator app reads it.
fn secret_of(uri: &str) -> String {
    let q = uri.split_once('?').unwrap().1;
    q.split('&')
        .find_map(|kv| kv.strip_prefix("secret="))
        .unwrap()
        .to_owned()
}

fn login(account: &str, password: &str, extra: Value) -> Value {
    let mut b = json!({"account": account, "password": password});
    for (k, v) in extra.as_object().unwrap() {
        b[k] = v.clone();
    }
    b
}

#[tokio::test]
async fn totp_enrolment_login_recovery_and_disable() {
    let srv = Server::start().await;
    let admin = srv.admin();
    let pw = "correct horse battery";
    admin
        .post("/v1/customers", json!({"name": "acme", "password": pw}))
        .await
        .expect(201);
    let anon = srv.client(None);
    let t = anon
        .post("/v1/auth/login", login("acme", pw, json!({})))
        .await
        .expect(201);
    let acme = srv.client(Some(t["token"].as_str().unwrap()));

    let st = acme.get("/v1/auth/totp").await.expect(200);
    assert_eq!(
        st,
        json!({"enrolled": false, "confirmed": false, "recovery_codes_left": 0})
    );
    acme.post("/v1/auth/totp/confirm", json!({"code": "123456"}))
        .await
        .error(409, "conflict");

    // Enrol: the URI carries the secret; the QR code is SVG without styles.
    let e = acme.post("/v1/auth/totp", json!(null)).await.expect(201);
    let uri = e["otpauth_uri"].as_str().unwrap();
    assert!(uri.starts_with("otpauth://totp/hostplane:acme?"), "{uri}");
    let secret = secret_of(uri);
    assert_eq!(secret, e["secret"].as_str().unwrap());
    let svg = e["qr_svg"].as_str().unwrap();
    assert!(svg.starts_with("<svg") && !svg.contains("style"), "{svg}");
    // Not on until confirmed: logins still need only the password.
    anon.post("/v1/auth/login", login("acme", pw, json!({})))
        .await
        .expect(201);

    let step = totp::step_of(now());
    let right = totp::code_at(&secret, step).unwrap();
    let wrong = format!("{:06}", (right.parse::<u32>().unwrap() + 1) % 1_000_000);
    acme.post("/v1/auth/totp/confirm", json!({"code": wrong}))
        .await
        .invalid("code");
    let codes = acme
        .post("/v1/auth/totp/confirm", json!({"code": right}))
        .await
        .expect(200);
    let codes: Vec<String> = codes["recovery_codes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_str().unwrap().to_owned())
        .collect();
    assert_eq!(codes.len(), 10);
    let st = acme.get("/v1/auth/totp").await.expect(200);
    assert_eq!(st["confirmed"], true);
    assert_eq!(st["recovery_codes_left"], 10);
    acme.post("/v1/auth/totp", json!(null))
        .await
        .error(409, "conflict");

    // Login: no code names the field; the confirming code is not accepted again.
    let r = anon
        .post("/v1/auth/login", login("acme", pw, json!({})))
        .await;
    let b = r.error(401, "unauthorized");
    assert_eq!(
        (b["field"].as_str(), b["rule"].as_str()),
        (Some("totp_code"), Some("totp_required"))
    );
    let b = anon
        .post(
            "/v1/auth/login",
            login("acme", pw, json!({"totp_code": right})),
        )
        .await
        .error(401, "unauthorized");
    assert_eq!(b["field"], "totp_code", "{b}");
    // The next step's code (one step of drift allowed) works, once.
    let next = totp::code_at(&secret, totp::step_of(now()) + 1).unwrap();
    anon.post(
        "/v1/auth/login",
        login("acme", pw, json!({"totp_code": next})),
    )
    .await
    .expect(201);
    let b = anon
        .post(
            "/v1/auth/login",
            login("acme", pw, json!({"totp_code": next})),
        )
        .await
        .error(401, "unauthorized");
    assert_eq!(b["field"], "totp_code");
    // A wrong password with a code is the plain refusal (no field).
    let b = anon
        .post(
            "/v1/auth/login",
            login("acme", "wrong password!", json!({"totp_code": "000000"})),
        )
        .await
        .error(401, "unauthorized");
    assert!(b["field"].is_null(), "{b}");

    // A recovery code works once (any case), then it is gone.
    let rc = codes[3].to_uppercase();
    anon.post(
        "/v1/auth/login",
        login("acme", pw, json!({"recovery_code": rc})),
    )
    .await
    .expect(201);
    let b = anon
        .post(
            "/v1/auth/login",
            login("acme", pw, json!({"recovery_code": codes[3]})),
        )
        .await
        .error(401, "unauthorized");
    assert_eq!(b["field"], "recovery_code");
    assert_eq!(
        acme.get("/v1/auth/totp").await.expect(200)["recovery_codes_left"],
        9
    );

    // Disabling needs proof.
    acme.post("/v1/auth/totp/disable", json!({}))
        .await
        .invalid("code");
    acme.post(
        "/v1/auth/totp/disable",
        json!({"password": "not it at all"}),
    )
    .await
    .invalid("password");
    acme.post("/v1/auth/totp/disable", json!({"password": pw}))
        .await
        .expect(204);
    anon.post("/v1/auth/login", login("acme", pw, json!({})))
        .await
        .expect(201);
    srv.stop().await;
}

#[tokio::test]
async fn impersonation_is_scoped_and_audited_under_both_names() {
    let srv = Server::start().await;
    let admin = srv.admin();
    default_clusters(&admin).await;
    let alice = customer(&srv, &admin, "alice", json!({})).await;
    let r1 = customer(&srv, &admin, "res-one", json!({"kind": "reseller"})).await;
    let r2 = customer(&srv, &admin, "res-two", json!({"kind": "reseller"})).await;
    r1.post("/v1/customers", json!({"name": "carol"}))
        .await
        .expect(201);
    r2.post("/v1/customers", json!({"name": "dave"}))
        .await
        .expect(201);

    // Refusals: customers never; another reseller's customer, the admin's
    // customer, a reseller, oneself: as if absent; resellers are not acted as.
    alice
        .post("/v1/auth/impersonate", json!({"account": "carol"}))
        .await
        .error(403, "forbidden");
    for who in ["dave", "alice", "res-two", "res-one", "nobody"] {
        let b = r1
            .post("/v1/auth/impersonate", json!({"account": who}))
            .await
            .error(404, "not_found");
        assert_eq!(b["field"], "account", "{who}: {b}");
    }
    admin
        .post("/v1/auth/impersonate", json!({"account": "res-one"}))
        .await
        .error(403, "forbidden");
    r1.post(
        "/v1/auth/impersonate",
        json!({"account": "carol", "minutes": 0}),
    )
    .await
    .invalid("minutes");

    // The reseller acts as its customer: both identities in whoami.
    let t = r1
        .post("/v1/auth/impersonate", json!({"account": "carol"}))
        .await
        .expect(201);
    assert!(t["expires_at"].is_string(), "{t}");
    let as_carol = srv.client(Some(t["token"].as_str().unwrap()));
    let me = as_carol.get("/v1/auth/whoami").await.expect(200);
    assert_eq!(
        (
            me["account"].as_str(),
            me["kind"].as_str(),
            me["impersonator"].as_str()
        ),
        (Some("carol"), Some("customer"), Some("res-one"))
    );
    // What only the account's owner may do.
    as_carol
        .post("/v1/tokens", json!({"name": "keep"}))
        .await
        .error(403, "forbidden");
    as_carol
        .post("/v1/auth/totp", json!(null))
        .await
        .error(403, "forbidden");
    as_carol
        .post("/v1/auth/impersonate", json!({"account": "carol"}))
        .await
        .error(403, "forbidden");
    // Carol's scope, nothing more.
    as_carol
        .get("/v1/customers/dave")
        .await
        .error(404, "not_found");

    // A change made with it: audited as "res-one as carol", seen by carol too.
    as_carol
        .post("/v1/domains", json!({"name": "carol.example"}))
        .await
        .expect(201);
    let by_both = |events: &[Value]| {
        events.iter().any(|e| {
            e["kind"] == "domain"
                && e["object"] == "carol.example"
                && e["actor"] == "res-one as carol"
        })
    };
    assert!(by_both(&admin.list_all("/v1/events").await));
    assert!(by_both(&as_carol.list_all("/v1/events").await));
    assert!(by_both(&r1.list_all("/v1/events").await));

    // Revoked: gone at once. An admin may act as any customer.
    as_carol
        .delete(&format!("/v1/tokens/{}", t["id"].as_str().unwrap()))
        .await
        .expect(204);
    as_carol
        .get("/v1/auth/whoami")
        .await
        .error(401, "unauthorized");
    let t = admin
        .post("/v1/auth/impersonate", json!({"account": "dave"}))
        .await
        .expect(201);
    let me = srv
        .client(Some(t["token"].as_str().unwrap()))
        .get("/v1/auth/whoami")
        .await
        .expect(200);
    assert_eq!(me["impersonator"], "admin");
    srv.stop().await;
}
