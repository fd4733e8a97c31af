//! PHP `mail()` through the whole platform (issue 15, point 3): the controller
//! makes the site's submission secret, the web server gets it with the mail
//! cluster's submission endpoint, the mail server only its hash; a PHP page
//! deployed through the API calls `mail()` on the web server, and the message lands
//! DKIM-signed in the domain's mailbox on the mail server. Real `hostplane`
//! processes (controller and agents through `testkit`) and real php-fpm.

#![allow(clippy::unwrap_used)] // test helpers outside #[test] fns may panic

use std::time::Duration;

use proto::agent_v1::RoleConfig;
use proto::v1::{CreateDomain, CreateMailbox, CreateSite};
use testkit::{Options, TestCluster};

const BIN: &str = env!("CARGO_BIN_EXE_hostplane");
const T: Duration = Duration::from_secs(20);
const DOMAIN: &str = "shop.example";

const PAGE: &str = r#"<?php
echo mail('bob@shop.example', 'Your order', "Thank you\n", 'From: Shop <orders@shop.example>') ? "sent" : "failed";
"#;

/// `ip:port` after the word `word` in an engine's health detail.
async fn engine_addr(c: &TestCluster, server: &str, word: &str) -> Option<String> {
    let view = c.server(server).await.ok()?;
    let detail = &view.engines.first()?.detail;
    let mut words = detail.split_whitespace();
    words.find(|w| *w == word)?;
    let next = words.next()?;
    let next = if next == "on" { words.next()? } else { next };
    let addr: std::net::SocketAddr = next.trim_end_matches([';', ',']).parse().ok()?;
    Some(addr.to_string())
}

fn http_get(addr: &str, path: &str) -> String {
    let out = std::process::Command::new("curl")
        .args(["-s", "--max-time", "10", "-H", &format!("Host: {DOMAIN}")])
        .arg(format!("http://{addr}{path}"))
        .output()
        .expect("`curl` not found: install curl (scripts/test does)");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[tokio::test]
async fn php_mail_reaches_the_sites_mailbox_signed() {
    if !rustix_root() {
        eprintln!("skipped: needs root (pools run as each site's own user)");
        return;
    }
    // Retries every second (the default waits a minute first), so the spooled
    // message below goes out soon after its mail server is back.
    let opts = Options {
        engine_options: [("mail_retry_secs".to_owned(), "1".to_owned())].into(),
        ..Options::default()
    };
    let mut c = TestCluster::start(BIN, opts).await.unwrap();
    for (name, role) in [
        ("web-a", "web"),
        ("dns-1", "dns"),
        ("files-1", "files"),
        ("mail-1", "mail"),
    ] {
        c.add_cluster(name, role, true).await.unwrap();
    }
    c.add_customer("acme").await.unwrap();
    for (n, cl) in [("w1", "web-a"), ("f1", "files-1"), ("mx1", "mail-1")] {
        c.add_agent(n, cl, "GB").await.unwrap();
    }
    for n in ["w1", "f1", "mx1"] {
        c.wait_converged(n, T).await.unwrap();
    }
    c.admin()
        .create_domain(&CreateDomain {
            name: DOMAIN.into(),
            customer: Some("acme".into()),
            clusters: None,
        })
        .await
        .unwrap();
    c.admin()
        .create_site(&CreateSite {
            domain: DOMAIN.into(),
            aliases: None,
            php: Some(true),
            mode: Some("all".into()),
            https_redirect: None,
        })
        .await
        .unwrap();
    c.admin()
        .create_mailbox(&CreateMailbox {
            address: format!("bob@{DOMAIN}"),
            password: Some("bob-password-12".into()),
            quota_mb: None,
            display_name: None,
        })
        .await
        .unwrap();
    let mut tar = tar::Builder::new(Vec::new());
    let mut h = tar::Header::new_gnu();
    h.set_size(PAGE.len() as u64);
    h.set_mode(0o644);
    h.set_cksum();
    tar.append_data(&mut h, "mail.php", PAGE.as_bytes())
        .unwrap();
    c.admin()
        .upload_site_content(DOMAIN, tar.into_inner().unwrap(), |_| {})
        .await
        .unwrap();

    // the secret reaches the web server with the route, only its hash the mail server
    c.wait_until("w1 has the site's mail route", T, async |c| {
        Ok(c.agent_desired("w1")?.is_some_and(|d| match d.role {
            RoleConfig::Web(w) => w.sites.iter().any(|s| s.mail.is_some()),
            _ => false,
        }))
    })
    .await
    .unwrap();
    let web = c.agent_desired("w1").unwrap().unwrap();
    let RoleConfig::Web(w) = web.role else {
        panic!("w1 is a web server")
    };
    let route = w.sites[0].mail.clone().unwrap();
    assert_eq!(route.submission.len(), 1, "{route:?}");
    c.wait_until("mx1 has the site's login", T, async |c| {
        Ok(c.agent_desired("mx1")?.is_some_and(|d| match d.role {
            RoleConfig::Mail(m) => m.domains.iter().any(|d| d.site_login.is_some()),
            _ => false,
        }))
    })
    .await
    .unwrap();
    let mx = serde_json::to_string(&c.agent_desired("mx1").unwrap().unwrap()).unwrap();
    assert!(
        !mx.contains(&route.secret),
        "the secret never reaches a mail server"
    );
    c.wait_converged("w1", T).await.unwrap();
    c.wait_converged("mx1", T).await.unwrap();

    c.wait_until("web engine up", T, async |c| {
        Ok(engine_addr(c, "w1", "http").await.is_some())
    })
    .await
    .unwrap();
    let http = engine_addr(&c, "w1", "http").await.unwrap();
    c.wait_until("the page is deployed", T, async |_| {
        Ok(http_get(&http, "/mail.php") == "sent")
    })
    .await
    .unwrap();

    let maildir = c
        .agent("mx1")
        .unwrap()
        .state_dir
        .join("engines/mail/mail")
        .join(DOMAIN)
        .join("bob/Maildir/new");
    let m2 = maildir.clone();
    c.wait_until("the message in bob's Maildir", T, async move |_| {
        Ok(std::fs::read_dir(&m2).is_ok_and(|d| d.count() > 0))
    })
    .await
    .unwrap();
    let msg = std::fs::read_dir(&maildir)
        .unwrap()
        .flatten()
        .map(|e| std::fs::read_to_string(e.path()).unwrap())
        .next()
        .unwrap();
    assert!(msg.contains("Subject: Your order"), "{msg}");
    assert!(msg.contains("DKIM-Signature:"), "{msg}");
    assert!(msg.contains(&format!("d={DOMAIN}")), "{msg}");
    let site = c.admin().get_site(DOMAIN).await.unwrap();
    assert_eq!(site.mail_cluster.as_deref(), Some("mail-1"), "{site:?}");
    assert!(site.mail_spooled.is_empty(), "{site:?}");

    // The mail cluster down: mail() still succeeds (spooled durably on the web
    // server), and the site's view says what waits where and why.
    c.kill_agent("mx1").unwrap();
    assert_eq!(http_get(&http, "/mail.php"), "sent");
    c.wait_until("site show names the waiting message", T, async |c| {
        let site = c.admin().get_site(DOMAIN).await?;
        Ok(site
            .mail_spooled
            .iter()
            .any(|m| m.server == "w1" && m.messages == 1 && !m.last_error.is_empty()))
    })
    .await
    .unwrap();
    // Back up: the message goes out and nothing waits any more.
    c.restart_agent("mx1").unwrap();
    let m3 = maildir.clone();
    c.wait_until("the second message in bob's Maildir", T, async move |_| {
        Ok(std::fs::read_dir(&m3).is_ok_and(|d| d.count() == 2))
    })
    .await
    .unwrap();
    c.wait_until("nothing waits", T, async |c| {
        Ok(c.admin().get_site(DOMAIN).await?.mail_spooled.is_empty())
    })
    .await
    .unwrap();
}

fn rustix_root() -> bool {
    std::fs::read_to_string("/proc/self/status").is_ok_and(|s| {
        s.lines()
            .find(|l| l.starts_with("Uid:"))
            .and_then(|l| l.split_whitespace().nth(2))
            == Some("0")
    })
}
