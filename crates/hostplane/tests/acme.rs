//! ACME end to end (issue 17) against a real ACME server, Debian's Pebble
//! (`testkit::acme`): the controller orders a site's certificate, both web servers
//! of the site's cluster answer the HTTP-01 challenge, Pebble validates it for real
//! (resolving the site's names through our own DNS server, `-dnsserver`, and
//! fetching the token from our web engine), and every web server then serves the
//! Pebble-issued chain, checked by `curl --cacert <Pebble's root>`.
//!
//! The tests: a name that resolves only to the SECOND web server is validated
//! there, a dangling alias is left out; short-lived certificates are renewed
//! (and a removed name is dropped by the renewal); CA failures injected by the
//! proxy in front of Pebble (429 rate limit with `Retry-After`, an invalid
//! challenge) are shown in the site's ACME status while it keeps its internal
//! certificate; and renewal information (RFC 9773, added by the proxy) moves the
//! renewal into the CA's window and names the replaced certificate.

#![allow(clippy::unwrap_used)]

use std::time::Duration;

use proto::v1::{AcmeSettings, CreateDnsRecord, UpdateSite};
use testkit::acme::{curl_https, AcmeCluster, PebbleOptions};

const BIN: &str = env!("CARGO_BIN_EXE_hostplane");
const T: Duration = Duration::from_secs(30);
const ISSUE: Duration = Duration::from_secs(120);

fn unix(rfc3339: &str) -> i64 {
    time::OffsetDateTime::parse(rfc3339, &time::format_description::well_known::Rfc3339)
        .unwrap()
        .unix_timestamp()
}

fn now() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}

fn valid(s: &proto::v1::AcmeStatusView) -> bool {
    s.status == "valid" && s.serving == "acme"
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pebble_validates_http01_on_every_web_server_and_the_site_serves_its_chain() {
    let a = AcmeCluster::start(BIN, PebbleOptions::default(), false)
        .await
        .unwrap();
    let c = &a.c;
    a.add_domain("shop.test").await.unwrap();
    // `two` resolves to the second web server only: Pebble validates it there.
    let w2 = a.http[1].ip();
    c.admin()
        .create_dns_record(&CreateDnsRecord {
            domain: "shop.test".into(),
            name: "two".into(),
            ttl: None,
            data: serde_json::json!({"type": "A", "address": w2.to_string()}),
        })
        .await
        .unwrap();
    // `www` resolves to both web servers; `old` resolves nowhere.
    a.add_site(
        "shop.test",
        &["www.shop.test", "old.shop.test", "two.shop.test"],
    )
    .await
    .unwrap();
    let status = a
        .wait_acme("shop.test", "the ACME certificate is issued", ISSUE, |s| {
            s.status != "failed" && valid(s)
        })
        .await
        .unwrap();
    let mut names = status.names.clone();
    names.sort();
    assert_eq!(names, ["shop.test", "two.shop.test", "www.shop.test"]);
    // The site's `http-01`, set right after it was created (while the task may
    // already be ordering), holds: every name was validated by HTTP-01.
    assert!(
        status.validated.iter().all(|v| v.ends_with(": http-01")),
        "{status:?}"
    );
    assert_eq!(status.left_out.len(), 1, "{status:?}");
    assert_eq!(status.left_out[0].name, "old.shop.test");
    assert!(
        status.left_out[0].reason.contains("does not resolve"),
        "{status:?}"
    );
    assert!(
        status.issuer.as_deref().unwrap_or("").contains("Pebble"),
        "{status:?}"
    );
    assert!(status.last_error.is_none(), "{status:?}");

    let root = a.pebble.root_file().await.unwrap();
    // Both web servers serve the Pebble-issued chain, for every name.
    for addr in a.https {
        for host in ["shop.test", "www.shop.test", "two.shop.test"] {
            c.wait_until("the ACME chain is served", T, async |_| {
                Ok(curl_https(addr, host, &root).0 == 0)
            })
            .await
            .unwrap_or_else(|e| {
                panic!("{host} at {addr}: {e} {:?}", curl_https(addr, host, &root))
            });
        }
    }
    // The controller's internal CA does not verify it any more (it is not its cert).
    let ca = a.pebble.dir.path().join("internal-ca.pem");
    std::fs::write(&ca, c.ca_pem()).unwrap();
    assert_ne!(curl_https(a.https[0], "shop.test", &ca).0, 0);
    // The tokens are gone from the web servers' configs once validated.
    for w in ["w1", "w2"] {
        c.wait_until("challenge tokens removed", T, async |c| {
            Ok(match c.agent_desired(w)?.map(|d| d.role) {
                Some(proto::agent_v1::RoleConfig::Web(w)) => w.acme_challenges.is_empty(),
                _ => false,
            })
        })
        .await
        .unwrap();
    }
    // `site cert show` names the source.
    let cert = c.admin().get_site_certificate("shop.test").await.unwrap();
    assert_eq!(cert.source, "acme");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn short_lived_certificates_are_renewed_and_a_removed_name_is_dropped() {
    // 60-second certificates: renewed at two thirds (about 40 s) of their life.
    let a = AcmeCluster::start(
        BIN,
        PebbleOptions {
            validity_secs: Some(60),
        },
        false,
    )
    .await
    .unwrap();
    a.add_domain("short.test").await.unwrap();
    a.add_site("short.test", &["www.short.test"]).await.unwrap();
    let first = a
        .wait_acme("short.test", "the first certificate", ISSUE, valid)
        .await
        .unwrap();
    let first_end = unix(first.not_after.as_deref().unwrap());
    let renew = unix(first.renew_at.as_deref().unwrap());
    assert!(renew < first_end, "renewed before it expires: {first:?}");
    let renewed = a
        .wait_acme("short.test", "the renewal", ISSUE, |s| {
            valid(s) && s.not_after.as_deref().is_some_and(|t| unix(t) > first_end)
        })
        .await
        .unwrap();
    assert_eq!(renewed.names.len(), 2, "{renewed:?}");
    // Removing a name: the next certificate drops it.
    a.c.admin()
        .update_site(
            "short.test",
            &UpdateSite {
                aliases: Some(Vec::new()),
                ..UpdateSite::default()
            },
        )
        .await
        .unwrap();
    a.wait_acme("short.test", "a certificate without www", ISSUE, |s| {
        valid(s) && s.names == ["short.test"]
    })
    .await
    .unwrap();
    // ACME off: no renewal any more; the status says so.
    let off =
        a.c.admin()
            .put_site_acme(
                "short.test",
                &AcmeSettings {
                    enabled: Some(false),
                    challenge: None,
                },
            )
            .await
            .unwrap();
    assert_eq!(off.status, "disabled");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ca_failures_are_shown_and_the_internal_certificate_kept() {
    let a = AcmeCluster::start(BIN, PebbleOptions::default(), true)
        .await
        .unwrap();
    let api = a.c.admin().clone();
    // A rate limit with `Retry-After`: the failure is shown, the retry waits
    // as long as the CA said.
    a.proxy().set(|f| {
        f.refuse_orders = 1;
        f.retry_after = 7200;
    });
    a.add_domain("limited.test").await.unwrap();
    a.add_site("limited.test", &[]).await.unwrap();
    let s = a
        .wait_acme("limited.test", "the rate limit shown", ISSUE, |s| {
            s.status == "failed"
        })
        .await
        .unwrap();
    let err = s.last_error.clone().unwrap_or_default();
    assert!(
        err.contains("rateLimited") || err.contains("too many"),
        "{s:?}"
    );
    let wait = unix(s.next_attempt.as_deref().unwrap()) - unix(s.last_attempt.as_deref().unwrap());
    assert!(wait >= 7200 - 60, "Retry-After honoured: {s:?}");
    a.c.wait_until("the internal certificate is served", T, async |_| {
        Ok(api.get_site_acme("limited.test").await?.serving == "internal")
    })
    .await
    .unwrap();
    let ca = a.pebble.dir.path().join("internal-ca.pem");
    std::fs::write(&ca, a.c.ca_pem()).unwrap();
    for addr in a.https {
        a.c.wait_until("the internal chain is served", T, async |_| {
            Ok(curl_https(addr, "limited.test", &ca).0 == 0)
        })
        .await
        .unwrap();
    }

    // An invalid challenge: the web servers publish a token Pebble does not
    // ask for, Pebble's validation fails.
    a.proxy().set(|f| f.bad_tokens = true);
    api.put_site_acme(
        "limited.test",
        &AcmeSettings {
            enabled: Some(false),
            challenge: None,
        },
    )
    .await
    .unwrap();
    api.put_site_acme(
        "limited.test",
        &AcmeSettings {
            enabled: Some(true),
            challenge: None,
        },
    )
    .await
    .unwrap();
    let s = a
        .wait_acme("limited.test", "the invalid challenge shown", ISSUE, |s| {
            s.status == "failed"
                && s.last_error
                    .as_deref()
                    .is_some_and(|e| !e.contains("too many"))
        })
        .await
        .unwrap();
    let err = s.last_error.clone().unwrap_or_default();
    assert!(
        err.contains("limited.test") && (err.contains("Invalid") || err.contains("unauthorized")),
        "{s:?}"
    );
    assert_eq!(s.serving, "internal", "{s:?}");
    assert_eq!(curl_https(a.https[1], "limited.test", &ca).0, 0);

    // The CA well again: turned on anew, the site gets its certificate.
    a.proxy().set(|f| f.bad_tokens = false);
    api.put_site_acme(
        "limited.test",
        &AcmeSettings {
            enabled: Some(true),
            challenge: None,
        },
    )
    .await
    .unwrap();
    a.wait_acme("limited.test", "issued once the CA is well", ISSUE, valid)
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn renewal_information_moves_the_renewal_and_names_the_replaced_certificate() {
    let a = AcmeCluster::start(BIN, PebbleOptions::default(), true)
        .await
        .unwrap();
    let day = 86_400;
    let (start, end) = (now() + 10 * day, now() + 11 * day);
    a.proxy().set(|f| f.renewal_window = Some((start, end)));
    a.add_domain("ari.test").await.unwrap();
    a.add_site("ari.test", &[]).await.unwrap();
    let s = a
        .wait_acme("ari.test", "issued with a renewal window", ISSUE, |s| {
            valid(s) && s.renewal_window.is_some()
        })
        .await
        .unwrap();
    // Pebble's certificates live 5 years: two thirds would be years away; the
    // CA's window says in ten days.
    let renew = unix(s.renew_at.as_deref().unwrap());
    assert!((start..=end).contains(&renew), "{s:?}");
    let asked = a.proxy().faults().renewal_asked;
    assert!(!asked.is_empty());
    let first_id = asked[0].clone();
    let first_end = unix(s.not_after.as_deref().unwrap());

    // The CA moves the window into the past (an incident): renewed at once
    // after its next check, naming the certificate it replaces.
    a.proxy()
        .set(|f| f.renewal_window = Some((now() - 2 * day, now() - day)));
    a.wait_acme("ari.test", "renewed early", Duration::from_secs(240), |s| {
        valid(s) && s.not_after.as_deref().is_some_and(|t| unix(t) > first_end)
    })
    .await
    .unwrap();
    a.proxy()
        .set(|f| f.renewal_window = Some((now() + 10 * day, now() + 11 * day)));
    let f = a.proxy().faults();
    assert!(f.replaces.contains(&first_id), "{f:?}");
}
