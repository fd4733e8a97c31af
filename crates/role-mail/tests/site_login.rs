//! A site's submission login (PHP `mail()` from its web servers, issue 15),
//! driven by swaks over STARTTLS: `site:<domain>` with the site's secret may send
//! from any address of its own domain only (envelope and `From:`), its mail is
//! DKIM-signed for the domain and counted against the domain's hourly limit; the
//! login is no key to another customer's domain.

mod common;

use anyhow::Result;
use common::*;
use proto::agent_v1::{DkimKey, MailDomain, SiteLogin};
use role_mail::Limits;

const SECRET: &str = "s3cret-of-the-site";

/// A swaks submission as the site of example.com (or `user`), envelope `from`,
/// header `From: header_from`.
async fn submit(sub: &str, user: &str, pw: &str, from: &str, header_from: &str) -> Result<Run> {
    let header = format!("From: {header_from}");
    swaks(&[
        "--server",
        sub,
        "--tls",
        "--auth",
        "PLAIN",
        "--auth-user",
        user,
        "--auth-password",
        pw,
        "--from",
        from,
        "--to",
        "bob@example.com",
        "--header",
        &header,
        "--header",
        "Subject: from the shop",
    ])
    .await
}

#[tokio::test]
async fn site_login_sends_for_its_own_domain_only_signed_and_limited() -> Result<()> {
    let b = block();
    let ip = ip(b, 1);
    let dir = tempfile::tempdir()?;
    let mut cfg = example(None, Some(tls(ip)));
    let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ED25519)?;
    cfg.domains[0].dkim = Some(DkimKey {
        selector: "hp1".into(),
        algorithm: "ed25519-sha256".into(),
        private_key_pem: key.serialize_pem(),
    });
    cfg.domains[0].site_login = Some(SiteLogin {
        password_hash: hash(SECRET),
    });
    cfg.domains[0].limits = Some(proto::agent_v1::MailLimits {
        messages_per_hour_per_mailbox: Some(3),
        messages_per_hour_per_domain: None,
        recipients_per_message: None,
    });
    // another customer's domain on the same server, with no site login
    cfg.domains.push(MailDomain {
        domain: "other.test".into(),
        primary: true,
        mailboxes: vec!["ceo".into()],
        aliases: vec![],
        accounts: vec![account("ceo", "ceo-pw")],
        primary_smtp: None,
        dkim: None,
        dkim_rsa: None,
        limits: None,
        site_login: None,
    });
    let s = server(ip, 0, dir.path(), &cfg, Limits::default())?;
    let sub = s.addrs().submission.to_string();
    let site = "site:example.com";

    // 1: its own domain, any local part: accepted, signed for example.com
    let ok = submit(
        &sub,
        site,
        SECRET,
        "shop@example.com",
        "Shop <shop@example.com>",
    )
    .await?;
    assert!(ok.ok && ok.out.contains("235 2.7.0"), "{}", ok.out);
    let bob = mailbox(dir.path(), "bob");
    assert_eq!(bob.len(), 1, "{bob:?}");
    assert!(bob[0].contains("DKIM-Signature:"), "{}", bob[0]);
    assert!(bob[0].contains("d=example.com"), "{}", bob[0]);
    assert!(bob[0].contains("with ESMTPSA"), "{}", bob[0]);

    // another customer's domain as envelope sender: 553 naming the rule
    let foreign = submit(&sub, site, SECRET, "ceo@other.test", "ceo@other.test").await?;
    assert!(
        !foreign.ok
            && foreign
                .out
                .contains("553 5.7.1 the site example.com may send only"),
        "{}",
        foreign.out
    );
    // a subdomain is not the site's domain either
    let sub_domain = submit(&sub, site, SECRET, "a@shop.example.com", "a@example.com").await?;
    assert!(
        !sub_domain.ok && sub_domain.out.contains("553 5.7.1"),
        "{}",
        sub_domain.out
    );
    // 2: the envelope is right but the From: header names another domain: 550
    let header = submit(
        &sub,
        site,
        SECRET,
        "shop@example.com",
        "Bank <ceo@other.test>",
    )
    .await?;
    assert!(
        !header.ok && header.out.contains("550 5.7.1 the From: header"),
        "{}",
        header.out
    );
    // the site's secret with another site's login, and a wrong secret: 535
    let other = submit(
        &sub,
        "site:other.test",
        SECRET,
        "ceo@other.test",
        "ceo@other.test",
    )
    .await?;
    assert!(
        !other.ok && other.out.contains("535 5.7.8"),
        "{}",
        other.out
    );
    let wrong = submit(&sub, site, "guess", "shop@example.com", "shop@example.com").await?;
    assert!(
        !wrong.ok && wrong.out.contains("535 5.7.8"),
        "{}",
        wrong.out
    );
    // 3: the limit (3 an hour): the refused ones above counted too (MAIL FROM of
    // the From:-header case was accepted), so this is the last one…
    let third = submit(
        &sub,
        site,
        SECRET,
        "noreply@example.com",
        "noreply@example.com",
    )
    .await?;
    assert!(third.ok, "{}", third.out);
    // … and the next is deferred with 451, which a spool retries
    let over = submit(
        &sub,
        site,
        SECRET,
        "noreply@example.com",
        "noreply@example.com",
    )
    .await?;
    assert!(
        !over.ok && over.out.contains("451 4.7.1 sending limit reached"),
        "{}",
        over.out
    );
    assert_eq!(mailbox(dir.path(), "bob").len(), 2);
    assert!(
        !dir.path().join("mail/other.test/ceo/Maildir/new").exists()
            || std::fs::read_dir(dir.path().join("mail/other.test/ceo/Maildir/new"))?.count() == 0
    );
    assert_eq!(s.sending_limited(), [("site:example.com".to_owned(), 1)]);
    Ok(())
}
