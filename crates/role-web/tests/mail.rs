//! PHP `mail()` end to end (issue 15): a real php-fpm pool of the site calls
//! `mail()`, `sendmail_path` runs the engine's sendmail command as the site's user,
//! the message is spooled on the web server and submitted by the spool worker to a
//! real role-mail submission server (STARTTLS with the CA's certificate, AUTH as
//! the site), which DKIM-signs it into the recipient's Maildir. With the mail
//! server down the message stays spooled, also across an engine restart, and goes
//! out when the server is back. A site can neither send as another site's domain
//! nor be told apart by anything but its uid; a site whose domain has no mail is
//! refused with a sentence saying so. Over its hourly limit the site's mail is
//! deferred by the mail server and stays spooled.

#![allow(clippy::unwrap_used)] // test helpers outside #[test] functions

mod common;

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use agent::supervisor::{AgentTlsPaths, EngineContext, RoleEngine};
use common::{site, TestCa};
use proto::agent_v1::{
    DkimKey, MailConfig, MailDomain, RoleConfig, SiteLogin, SiteMail, WebConfig, WebSite,
};
use role_mail::{Limits, Listeners, MailServer};
use role_web::plan::pool_user;
use role_web::WebEngine;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const SHOP: &str = "shop-mail.test";
const OTHER: &str = "other-mail.test";
const NOMAIL: &str = "nomail-mail.test";
const MAIL_IP: &str = "127.0.61.25";

const PHP: &str = r#"<?php
$headers = "From: " . ($_GET['from'] ?? 'Shop <shop@DOMAIN>');
$params = isset($_GET['f']) ? '-f' . $_GET['f'] : '';
$ok = mail($_GET['to'] ?? 'bob@shop-mail.test', 'Password reset', "Hello\n.\nClick the link\n", $headers, $params);
echo $ok ? "sent\n" : "failed\n";
"#;

fn argon2(pw: &str) -> String {
    use argon2::password_hash::{PasswordHasher, SaltString};
    let salt = SaltString::encode_b64(b"0123456789abcdef").unwrap();
    argon2::Argon2::default()
        .hash_password(pw.as_bytes(), &salt)
        .unwrap()
        .to_string()
}

fn mail_domain(name: &str, mailboxes: &[&str], secret: &str) -> MailDomain {
    MailDomain {
        domain: name.into(),
        primary: true,
        mailboxes: mailboxes.iter().map(|m| m.to_string()).collect(),
        aliases: vec![],
        accounts: vec![],
        primary_smtp: None,
        dkim: None,
        dkim_rsa: None,
        limits: None,
        site_login: Some(SiteLogin {
            password_hash: argon2(secret),
        }),
    }
}

/// A role-mail server on `MAIL_IP`, submission on `port` (0: any); the shop's
/// domain may send `per_hour` messages an hour (`None`: the default).
fn mail_server(dir: &Path, ca: &TestCa, port: u16, per_hour: Option<u32>) -> MailServer {
    let ip: IpAddr = MAIL_IP.parse().unwrap();
    let bind = |port: u16| {
        let l = std::net::TcpListener::bind(SocketAddr::new(ip, port)).unwrap();
        l.set_nonblocking(true).unwrap();
        tokio::net::TcpListener::from_std(l).unwrap()
    };
    let listeners = Listeners {
        mx: bind(0),
        submission: bind(port),
        submissions: bind(0),
        pop3: bind(0),
        pop3s: bind(0),
        imap: bind(0),
        imaps: bind(0),
    };
    let s = MailServer::start(listeners, dir, "mx.test", Some(ip), Limits::default()).unwrap();
    let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ED25519).unwrap();
    let mut shop = mail_domain(SHOP, &["bob"], "shop-secret");
    shop.limits = Some(proto::agent_v1::MailLimits {
        messages_per_hour_per_mailbox: per_hour,
        messages_per_hour_per_domain: per_hour,
        recipients_per_message: None,
    });
    shop.dkim = Some(DkimKey {
        selector: "hp1".into(),
        algorithm: "ed25519-sha256".into(),
        private_key_pem: key.serialize_pem(),
    });
    let cfg = MailConfig {
        domains: vec![shop, mail_domain(OTHER, &["ceo"], "other-secret")],
        flush: 0,
        tls: Some(ca.issue(&[MAIL_IP])),
        peers: vec![],
        writer: None,
    };
    let rejected = s.apply(&cfg);
    assert!(rejected.is_empty(), "{rejected:?}");
    s
}

fn web_site(domain: &str, mail: Option<SiteMail>) -> WebSite {
    let mut s = site(domain);
    s.php = true;
    s.mail = mail;
    s
}

fn publish(state: &Path, domain: &str) {
    let site = state.join("content").join(domain);
    std::fs::create_dir_all(site.join("releases/r1")).unwrap();
    std::fs::write(
        site.join("releases/r1/mail.php"),
        PHP.replace("DOMAIN", domain),
    )
    .unwrap();
    let _ = std::os::unix::fs::symlink("releases/r1", site.join("current"));
}

async fn get(addr: SocketAddr, host: &str, path: &str) -> String {
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    let req = format!("GET {path} HTTP/1.0\r\nHost: {host}\r\n\r\n");
    s.write_all(req.as_bytes()).await.unwrap();
    let mut buf = Vec::new();
    tokio::time::timeout(Duration::from_secs(30), s.read_to_end(&mut buf))
        .await
        .unwrap()
        .unwrap();
    let text = String::from_utf8_lossy(&buf).into_owned();
    text.split_once("\r\n\r\n")
        .map(|x| x.1.to_string())
        .unwrap_or(text)
}

fn maildir(dir: &Path, domain: &str, local: &str) -> Vec<String> {
    let new = dir
        .join("mail")
        .join(domain)
        .join(local)
        .join("Maildir/new");
    std::fs::read_dir(new)
        .map(|d| {
            d.flatten()
                .map(|e| std::fs::read_to_string(e.path()).unwrap_or_default())
                .collect()
        })
        .unwrap_or_default()
}

async fn until(what: &str, limit: Duration, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + limit;
    while !f() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Every `php-fpm.log` under `dir`, concatenated.
fn fpm_logs(dir: &Path) -> String {
    let mut out = String::new();
    let Ok(rd) = std::fs::read_dir(dir) else {
        return out;
    };
    for e in rd.flatten() {
        let p = e.path();
        if p.is_dir() {
            out.push_str(&fpm_logs(&p));
        } else if p.file_name().is_some_and(|n| n == "php-fpm.log") {
            out.push_str(&std::fs::read_to_string(&p).unwrap_or_default());
        }
    }
    out
}

/// Run the sendmail command as `uid` (root: 0) with `args`; exit code and stderr.
fn sendmail_as(uid: u32, gid: u32, args: &[&str], message: &str) -> (i32, String) {
    use std::io::Write;
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_hp-sendmail"))
        .args(args)
        .uid(uid)
        .gid(gid)
        .stdin(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(message.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn php_mail_is_spooled_submitted_signed_and_kept_while_the_mail_server_is_down() {
    if !rustix::process::geteuid().is_root() {
        eprintln!("skipped: needs root (pools run as each site's own user)");
        return;
    }
    let ca = TestCa::new("mail test CA");
    let tmp = tempfile::tempdir().unwrap();
    let mail_dir = tmp.path().join("mx");
    let mut mx = mail_server(&mail_dir, &ca, 0, None);
    let submission = mx.addrs().submission;

    // the web engine: the controller CA as its identity's CA
    let id_dir = tmp.path().join("identity");
    std::fs::create_dir_all(&id_dir).unwrap();
    let ca_path = ca.write(&id_dir, "ca.crt");
    let state = tmp.path().join("web");
    let options: BTreeMap<String, String> = [
        ("http_port", "0"),
        ("https_port", "0"),
        ("sendmail", env!("CARGO_BIN_EXE_hp-sendmail")),
        ("mail_retry_secs", "1"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    let ctx = EngineContext {
        server: "web-1".into(),
        role: "web".into(),
        bind: "127.0.0.1".parse().unwrap(),
        state_dir: state.clone(),
        identity: Some(AgentTlsPaths {
            cert: id_dir.join("agent.crt"),
            key: id_dir.join("agent.key"),
            ca: ca_path,
        }),
        options,
        controllers: Vec::new(),
    };
    let mut engine = WebEngine::start(&ctx).unwrap();
    let route = |secret: &str| SiteMail {
        submission: vec![submission.to_string()],
        secret: secret.into(),
        client_host: None,
        client_names: None,
    };
    for d in [SHOP, OTHER, NOMAIL] {
        publish(&state, d);
    }
    let cfg = WebConfig {
        sites: vec![
            web_site(SHOP, Some(route("shop-secret"))),
            web_site(OTHER, Some(route("other-secret"))),
            web_site(NOMAIL, None),
        ]
        .into_iter()
        .map(std::sync::Arc::new)
        .collect(),
        files_origin: None,
        peers: Vec::new(),
        acme_challenges: Vec::new(),
    };
    engine.apply(&RoleConfig::Web(cfg.clone())).await.unwrap();
    let http = engine.http_addr();
    let spool = engine.mailer().expect("the mailer runs").spool().clone();

    // 1. mail() from the shop reaches bob, DKIM-signed for the shop's domain
    assert_eq!(get(http, SHOP, "/mail.php").await.trim(), "sent");
    until(
        "the first message in bob's Maildir",
        Duration::from_secs(30),
        || maildir(&mail_dir, SHOP, "bob").len() == 1,
    )
    .await;
    let m = &maildir(&mail_dir, SHOP, "bob")[0];
    assert!(m.contains("DKIM-Signature:"), "{m}");
    assert!(m.contains(&format!("d={SHOP}")), "{m}");
    assert!(m.contains("Subject: Password reset"), "{m}");
    assert!(m.contains(&format!("From: Shop <shop@{SHOP}>")), "{m}");
    assert!(m.contains("Message-ID: <"), "{m}");
    assert!(
        m.contains("\n.\nClick the link"),
        "a lone dot is content: {m}"
    );
    until("an empty spool", Duration::from_secs(10), || {
        spool.ids().unwrap().is_empty()
    })
    .await;

    // 2. the mail server is down: mail() still succeeds, the message waits …
    mx.stop();
    drop(mx);
    assert_eq!(
        get(http, SHOP, &format!("/mail.php?f=orders@{SHOP}"))
            .await
            .trim(),
        "sent"
    );
    assert_eq!(spool.ids().unwrap().len(), 1);
    tokio::time::sleep(Duration::from_secs(3)).await;
    let ids = spool.ids().unwrap();
    assert_eq!(ids.len(), 1, "kept while the mail server is down");
    assert_eq!(
        spool.read(&ids[0]).unwrap().envelope.from,
        format!("orders@{SHOP}")
    );
    // … across a restart of the engine …
    engine.shutdown().await;
    drop(engine);
    let mut engine = WebEngine::start(&ctx).unwrap();
    engine.apply(&RoleConfig::Web(cfg.clone())).await.unwrap();
    let http = engine.http_addr();
    assert_eq!(spool.ids().unwrap(), ids, "still spooled after the restart");
    // … and goes out once the server is back on its address
    // (back with a limit of 2 messages an hour for the shop: this one is the first)
    let mx = mail_server(&mail_dir, &ca, submission.port(), Some(2));
    until(
        "the second message in bob's Maildir",
        Duration::from_secs(30),
        || maildir(&mail_dir, SHOP, "bob").len() == 2,
    )
    .await;
    until("an empty spool again", Duration::from_secs(10), || {
        spool.ids().unwrap().is_empty()
    })
    .await;

    // 3. another site cannot send as the shop, neither by -f nor by From:
    let f = format!("/mail.php?f=noreply@{SHOP}&to=ceo@{OTHER}");
    assert_eq!(get(http, OTHER, &f).await.trim(), "failed");
    let from = format!("/mail.php?from=boss@{SHOP}&to=ceo@{OTHER}");
    assert_eq!(get(http, OTHER, &from).await.trim(), "failed");
    // its own domain works (its own login, its own secret)
    assert_eq!(
        get(http, OTHER, &format!("/mail.php?to=ceo@{OTHER}"))
            .await
            .trim(),
        "sent"
    );
    until("ceo's message", Duration::from_secs(30), || {
        maildir(&mail_dir, OTHER, "ceo").len() == 1
    })
    .await;
    assert_eq!(maildir(&mail_dir, SHOP, "bob").len(), 2);

    // the socket knows a caller by uid only: the other site's user asking for the
    // shop's sender is refused; root (no site's user) is refused
    let socket = engine.mailer().unwrap().socket().to_path_buf();
    let sock = socket.to_str().unwrap();
    let ids = role_web::fpm::lookup_user(&pool_user(OTHER)).unwrap();
    let msg = format!("To: bob@{SHOP}\nSubject: x\n\nhi\n");
    let (code, err) = sendmail_as(
        ids.uid,
        ids.gid,
        &["--socket", sock, "-t", "-i", "-f", &format!("a@{SHOP}")],
        &msg,
    );
    assert_ne!(code, 0);
    assert!(
        err.contains("only from addresses of its own domain"),
        "{err}"
    );
    // ... and the other site's error log says why its mail() failed (`site logs`).
    let other_log = std::fs::read_to_string(state.join("logs").join(format!("{OTHER}.error.log")))
        .unwrap_or_default();
    assert!(
        other_log.contains("mail() refused") && other_log.contains("own domain"),
        "{other_log}"
    );
    let (code, err) = sendmail_as(0, 0, &["--socket", sock, "-t", "-i"], &msg);
    assert_ne!(code, 0);
    assert!(err.contains("is not the PHP user of a site"), "{err}");

    // 4. a site whose domain has no mail: refused, saying what to do (also in
    // the php-fpm log, where sendmail's stderr goes)
    assert_eq!(get(http, NOMAIL, "/mail.php").await.trim(), "failed");
    until(
        "the refusal in a php-fpm log",
        Duration::from_secs(10),
        || fpm_logs(&state.join("php")).contains("has no mail service"),
    )
    .await;
    let ids = role_web::fpm::lookup_user(&pool_user(NOMAIL)).unwrap();
    let (code, err) = sendmail_as(ids.uid, ids.gid, &["--socket", sock, "-t", "-i"], &msg);
    assert_eq!(code, 69, "{err}");
    assert!(err.contains("has no mail service"), "{err}");
    assert!(err.contains("add mail to the domain"), "{err}");
    assert!(spool.ids().unwrap().is_empty());
    assert_eq!(maildir(&mail_dir, SHOP, "bob").len(), 2);

    // 5. over the shop's hourly limit the mail server defers (451): the message
    // stays spooled for a later retry, nothing is lost
    assert_eq!(get(http, SHOP, "/mail.php").await.trim(), "sent");
    until(
        "the third message in bob's Maildir",
        Duration::from_secs(30),
        || maildir(&mail_dir, SHOP, "bob").len() == 3,
    )
    .await;
    assert_eq!(get(http, SHOP, "/mail.php").await.trim(), "sent");
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(spool.ids().unwrap().len(), 1, "over the limit: kept");
    assert_eq!(maildir(&mail_dir, SHOP, "bob").len(), 3);
    let limited = mx.sending_limited();
    assert_eq!(limited.len(), 1, "{limited:?}");
    assert_eq!(limited[0].0, format!("site:{SHOP}"));
    assert!(limited[0].1 >= 1, "refused and retried: {limited:?}");

    engine.shutdown().await;
    drop(mx);
    assert!(
        !PathBuf::from(&socket).exists(),
        "the socket is removed at shutdown"
    );
}
