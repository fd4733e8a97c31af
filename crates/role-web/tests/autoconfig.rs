//! Mail client autoconfiguration (issue 16 point 4) through the running server,
//! with curl: Thunderbird's document at `autoconfig.<domain>` and at the domain's
//! `/.well-known/` (plain HTTP and HTTPS), Outlook's Autodiscover by POST with the
//! address echoed back only when it is the site's own, nothing for a site whose
//! domain has no mail, and the `autoconfig.` host answering nothing else.

#![allow(clippy::unwrap_used)] // test helpers outside #[test] functions

mod common;

use std::sync::Arc;

use common::{args, curl, site, Server, TestCa};
use proto::agent_v1::{ClientNames, SiteMail, WebConfig};

const SHOP: &str = "shop-autoconfig.test";
const NOMAIL: &str = "nomail-autoconfig.test";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mail_domains_answer_thunderbird_and_outlook() {
    let ca = TestCa::new("autoconfig test CA");
    let mut shop = site(SHOP);
    shop.tls = Some(ca.issue(&[SHOP]));
    shop.mail = Some(SiteMail {
        submission: vec!["127.0.0.1:587".into()],
        secret: "s".into(),
        client_host: Some("mx1.hosting.test".into()),
        // The cluster's client names win over the writer's host name.
        client_names: Some(ClientNames {
            imap: "imap.mail.hosting.test".into(),
            pop3: "pop.mail.hosting.test".into(),
            smtp: "smtp.mail.hosting.test".into(),
        }),
    });
    let cfg = WebConfig {
        sites: vec![Arc::new(shop), Arc::new(site(NOMAIL))],
        files_origin: None,
        peers: Vec::new(),
        acme_challenges: Vec::new(),
    };
    let srv = Server::start(&cfg).await;
    srv.publish(SHOP, "r1", &[("index.html", b"shop")]);
    srv.publish(NOMAIL, "r1", &[("index.html", b"nomail")]);
    let ca_file = ca.write(srv.tmp.path(), "ca.pem");
    let get = |host: &str, path: &str, extra: &[&str]| {
        let mut a = srv.resolve(host);
        a.extend(args(extra));
        a.push(if extra.contains(&"--cacert") {
            srv.https_url(host, path)
        } else {
            srv.http_url(host, path)
        });
        curl(a)
    };

    // Thunderbird: autoconfig.<domain> over plain HTTP
    let tb = get(
        &format!("autoconfig.{SHOP}"),
        "/mail/config-v1.1.xml?emailaddress=jo%40shop-autoconfig.test",
        &[],
    )
    .await;
    assert_eq!(tb.status, 200, "{tb:?}");
    assert!(tb
        .header("content-type")
        .unwrap()
        .starts_with("application/xml"));
    let text = tb.text();
    assert!(
        text.contains(&format!("<emailProvider id=\"{SHOP}\">")),
        "{text}"
    );
    assert!(
        text.contains("<hostname>imap.mail.hosting.test</hostname>")
            && text.contains("<hostname>pop.mail.hosting.test</hostname>")
            && text.contains("<hostname>smtp.mail.hosting.test</hostname>")
            && !text.contains("mx1.hosting.test"),
        "{text}"
    );
    assert!(
        text.contains("<port>993</port>") && text.contains("<port>465</port>"),
        "{text}"
    );
    // … and the domain's own /.well-known/ over HTTPS with its certificate
    let ca_s = ca_file.to_str().unwrap();
    let tb = get(
        SHOP,
        "/.well-known/autoconfig/mail/config-v1.1.xml",
        &["--cacert", ca_s],
    )
    .await;
    assert_eq!(tb.status, 200, "{tb:?}");
    assert!(tb
        .text()
        .contains("<hostname>imap.mail.hosting.test</hostname>"));

    // Outlook: POST with the address; echoed only when it is the site's
    let body = format!(
        "<?xml version=\"1.0\" encoding=\"utf-8\"?><Autodiscover xmlns=\"http://schemas.microsoft.com/exchange/autodiscover/outlook/requestschema/2006\"><Request><EMailAddress>jo@{SHOP}</EMailAddress><AcceptableResponseSchema>http://schemas.microsoft.com/exchange/autodiscover/outlook/responseschema/2006a</AcceptableResponseSchema></Request></Autodiscover>"
    );
    let ad = get(
        SHOP,
        "/autodiscover/autodiscover.xml",
        &[
            "--cacert",
            ca_s,
            "-H",
            "Content-Type: text/xml",
            "--data-binary",
            &body,
        ],
    )
    .await;
    assert_eq!(ad.status, 200, "{ad:?}");
    let text = ad.text();
    assert!(
        text.contains("<Server>imap.mail.hosting.test</Server>")
            && text.contains("<Server>smtp.mail.hosting.test</Server>"),
        "{text}"
    );
    assert!(
        text.contains(&format!("<LoginName>jo@{SHOP}</LoginName>")),
        "{text}"
    );
    let other = body.replace(SHOP, "victim.example");
    let ad = get(
        &format!("autodiscover.{SHOP}"),
        "/Autodiscover/Autodiscover.xml",
        &["--data-binary", &other],
    )
    .await;
    assert_eq!(ad.status, 200, "{ad:?}");
    assert!(!ad.text().contains("LoginName"), "{}", ad.text());
    let big = "x".repeat(64 * 1024);
    let ad = get(
        SHOP,
        "/autodiscover/autodiscover.xml",
        &["--data-binary", &big],
    )
    .await;
    assert_eq!(ad.status, 413, "{ad:?}");

    // the autoconfig host is not the site; a site without mail has no documents
    let r = get(&format!("autoconfig.{SHOP}"), "/index.html", &[]).await;
    assert_eq!(r.status, 404, "{r:?}");
    assert_eq!(get(SHOP, "/index.html", &[]).await.text(), "shop");
    let r = get(
        &format!("autoconfig.{NOMAIL}"),
        "/mail/config-v1.1.xml",
        &[],
    )
    .await;
    assert_eq!(r.status, 404, "{r:?}");
    let r = get(NOMAIL, "/.well-known/autoconfig/mail/config-v1.1.xml", &[]).await;
    assert_eq!(r.status, 404, "{r:?}");
    srv.stop().await;
}
