//! Protocol tests of the SMTP session through the in-memory harness.

use std::path::Path;

use proto::agent_v1::{MailAccount, MailConfig, MailDomain};

use super::Mode;
use crate::harness::{codes, shared, smtp};
use crate::server::Limits;

fn cfg(primary: bool) -> MailConfig {
    MailConfig {
        domains: vec![MailDomain {
            domain: "example.com".into(),
            primary,
            mailboxes: vec!["alice".into(), "bob".into(), "full".into()],
            aliases: vec![
                (
                    "team".into(),
                    vec!["alice@example.com".into(), "bob@example.com".into()],
                ),
                ("out".into(), vec!["x@remote.test".into()]),
            ],
            accounts: vec![MailAccount {
                local_part: "full".into(),
                password_hash: "$argon2id$v=19$m=19456,t=2,p=1$c29tZXNhbHQ$aGFzaGhhc2hoYXNoaGFzaA"
                    .into(),
                quota_mb: 1,
                enabled: true,
            }],
            primary_smtp: (!primary).then(|| "127.0.0.1:9".into()),
            dkim: None,
            dkim_rsa: None,
            limits: None,
            site_login: None,
        }],
        tls: None,
        flush: 0,
        peers: Vec::new(),
        writer: None,
    }
}

fn new_mail(state: &Path, local: &str) -> Vec<Vec<u8>> {
    let dir = crate::maildir::maildir_path(state, "example.com", local).join("new");
    let mut v: Vec<_> = std::fs::read_dir(dir)
        .map(|d| {
            d.map(|e| std::fs::read(e.unwrap().path()).unwrap())
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

#[tokio::test]
async fn ehlo_advertises_extensions() {
    let dir = tempfile::tempdir().unwrap();
    let s = shared(dir.path(), &cfg(true), Limits::default()).unwrap();
    let t = smtp(&s, Mode::Mx, b"EHLO client.test\r\nQUIT\r\n").await;
    for ext in [
        "PIPELINING",
        "SIZE 26214400",
        "8BITMIME",
        "ENHANCEDSTATUSCODES",
        "SMTPUTF8",
    ] {
        assert!(t.contains(ext), "{ext} missing in {t}");
    }
    assert!(!t.contains("AUTH"), "{t}");
    assert_eq!(codes(&t), ["220", "250", "221"]);
}

#[tokio::test]
async fn pipelined_transaction_delivers_to_maildir() {
    let dir = tempfile::tempdir().unwrap();
    let s = shared(dir.path(), &cfg(true), Limits::default()).unwrap();
    let t = smtp(
        &s,
        Mode::Mx,
        b"EHLO c\r\nMAIL FROM:<s@remote.test> SIZE=100\r\nRCPT TO:<Alice@Example.com>\r\n\
RCPT TO:<nobody@example.com>\r\nRCPT TO:<x@elsewhere.test>\r\nRCPT TO:<team@example.com>\r\n\
DATA\r\nSubject: t\r\n\r\n..dotted\r\nbody\r\n.\r\nQUIT\r\n",
    )
    .await;
    assert_eq!(
        codes(&t),
        ["220", "250", "250", "250", "550", "550", "250", "354", "250", "221"],
        "{t}"
    );
    assert!(t.contains("550 5.1.1"), "{t}");
    assert!(t.contains("550 5.7.1 relay"), "{t}");
    // alice gets one copy although named twice (directly and through the alias)
    let alice = new_mail(dir.path(), "alice");
    assert_eq!(alice.len(), 1);
    let m = String::from_utf8(alice[0].clone()).unwrap();
    assert!(
        m.starts_with("Received: from c ([192.0.2.7])\n\tby mx.test"),
        "{m}"
    );
    assert!(m.ends_with("Subject: t\n\n.dotted\nbody\n"), "{m}");
    assert_eq!(new_mail(dir.path(), "bob").len(), 1);
}

#[tokio::test]
async fn smuggling_with_bare_lf_is_refused_and_nothing_delivered() {
    let dir = tempfile::tempdir().unwrap();
    let s = shared(dir.path(), &cfg(true), Limits::default()).unwrap();
    for script in [
        &b"EHLO c\r\nMAIL FROM:<a@r.test>\r\nRCPT TO:<alice@example.com>\r\nDATA\r\nx\r\n\n.\nMAIL FROM:<evil@r.test>\r\nRCPT TO:<bob@example.com>\r\nDATA\r\nsmuggled\r\n.\r\n"[..],
        &b"EHLO c\r\nMAIL FROM:<a@r.test>\r\nRCPT TO:<alice@example.com>\r\nDATA\r\nx\r\n.\nMAIL FROM:<evil@r.test>\r\n.\r\n"[..],
        &b"EHLO c\r\nMAIL FROM:<a@r.test>\r\nRCPT TO:<alice@example.com>\r\nDATA\r\nx\r\n.\r.\r\n.\r\n"[..],
    ] {
        let t = smtp(&s, Mode::Mx, script).await;
        assert!(t.contains("521 5.5.2"), "{t}");
        assert_eq!(codes(&t).last().map(String::as_str), Some("521"), "{t}");
    }
    assert!(new_mail(dir.path(), "alice").is_empty());
    assert!(new_mail(dir.path(), "bob").is_empty());
}

#[tokio::test]
async fn long_lines_and_oversize_messages_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let limits = Limits {
        max_message_bytes: 2000,
        ..Limits::default()
    };
    let s = shared(dir.path(), &cfg(true), limits).unwrap();
    let long = "a".repeat(1200);
    let big = "b\r\n".repeat(1000);
    let script = format!(
        "EHLO c\r\nMAIL FROM:<a@r.test> SIZE=5000\r\nMAIL FROM:<a@r.test>\r\nRCPT TO:<alice@example.com>\r\n\
DATA\r\n{long}\r\n.\r\nMAIL FROM:<a@r.test>\r\nRCPT TO:<alice@example.com>\r\nDATA\r\n{big}.\r\n{long}\r\nQUIT\r\n"
    );
    let t = smtp(&s, Mode::Mx, script.as_bytes()).await;
    assert_eq!(
        codes(&t),
        [
            "220", "250", "552", "250", "250", "354", "500", "250", "250", "354", "552", "500",
            "221"
        ],
        "{t}"
    );
    assert!(t.contains("552 5.3.4"), "{t}");
    assert!(new_mail(dir.path(), "alice").is_empty());
}

#[tokio::test]
async fn quota_is_checked_at_rcpt_and_at_end_of_data() {
    let dir = tempfile::tempdir().unwrap();
    let s = shared(dir.path(), &cfg(true), Limits::default()).unwrap();
    // 1 MiB quota: a 1 MiB - 10 byte message fits once ...
    let filler = vec![b'x'; 1024 * 1024 - 10];
    crate::maildir::deliver(dir.path(), "example.com", "full", "h", &filler).unwrap();
    let t = smtp(
        &s,
        Mode::Mx,
        b"EHLO c\r\nMAIL FROM:<a@r.test>\r\nRCPT TO:<full@example.com>\r\nDATA\r\nSubject: too much for what is left\r\n\r\nx\r\n.\r\nQUIT\r\n",
    )
    .await;
    assert!(t.contains("552 5.2.2"), "{t}");
    // ... and once it is full, RCPT already says so
    crate::maildir::deliver(dir.path(), "example.com", "full", "h", b"0123456789").unwrap();
    let t = smtp(
        &s,
        Mode::Mx,
        b"EHLO c\r\nMAIL FROM:<a@r.test>\r\nRCPT TO:<full@example.com>\r\nQUIT\r\n",
    )
    .await;
    assert!(t.contains("452 4.2.2"), "{t}");
}

#[tokio::test]
async fn remote_alias_destinations_are_refused_clearly() {
    let dir = tempfile::tempdir().unwrap();
    let s = shared(dir.path(), &cfg(true), Limits::default()).unwrap();
    let t = smtp(
        &s,
        Mode::Mx,
        b"EHLO c\r\nMAIL FROM:<a@r.test>\r\nRCPT TO:<out@example.com>\r\nQUIT\r\n",
    )
    .await;
    assert!(
        t.contains("550 5.7.1 remote delivery is not configured"),
        "{t}"
    );
}

#[tokio::test]
async fn recipient_limit_and_sequence_errors() {
    let dir = tempfile::tempdir().unwrap();
    let limits = Limits {
        max_recipients: 1,
        ..Limits::default()
    };
    let s = shared(dir.path(), &cfg(true), limits).unwrap();
    let t = smtp(
        &s,
        Mode::Mx,
        b"MAIL FROM:<a@r.test>\r\nEHLO c\r\nRCPT TO:<alice@example.com>\r\nDATA\r\nMAIL FROM:<a@r.test>\r\n\
RCPT TO:<alice@example.com>\r\nRCPT TO:<bob@example.com>\r\nAUTH PLAIN AGFAYg==\r\nBOGUS\r\nQUIT\r\n",
    )
    .await;
    assert_eq!(
        codes(&t),
        ["220", "503", "250", "503", "503", "250", "250", "452", "502", "500", "221"],
        "{t}"
    );
}

#[tokio::test]
async fn secondary_queues_valid_recipients_only() {
    let dir = tempfile::tempdir().unwrap();
    let s = shared(dir.path(), &cfg(false), Limits::default()).unwrap();
    let t = smtp(
        &s,
        Mode::Mx,
        b"EHLO c\r\nMAIL FROM:<a@r.test>\r\nRCPT TO:<team@example.com>\r\nRCPT TO:<nobody@example.com>\r\nDATA\r\nhi\r\n.\r\nQUIT\r\n",
    )
    .await;
    assert_eq!(
        codes(&t),
        ["220", "250", "250", "250", "550", "354", "250", "221"],
        "{t}"
    );
    let q = s.queue.list();
    assert_eq!(q.len(), 1);
    assert_eq!(q[0].rcpts, ["team@example.com"]);
    assert_eq!(q[0].relay, "127.0.0.1:9");
    assert!(new_mail(dir.path(), "alice").is_empty());
}

#[tokio::test]
async fn submission_needs_tls_before_auth_and_mail() {
    let dir = tempfile::tempdir().unwrap();
    let s = shared(dir.path(), &cfg(true), Limits::default()).unwrap();
    let t = smtp(
        &s,
        Mode::Submission,
        b"EHLO c\r\nAUTH PLAIN AGZ1bGxAZXhhbXBsZS5jb20AcHc=\r\nMAIL FROM:<full@example.com>\r\nQUIT\r\n",
    )
    .await;
    assert_eq!(codes(&t), ["220", "250", "530", "530", "221"], "{t}");
    assert!(!t.contains("AUTH PLAIN LOGIN"), "{t}");
}

#[tokio::test]
async fn a_copy_relayed_twice_is_stored_once() {
    let dir = tempfile::tempdir().unwrap();
    let s = shared(dir.path(), &cfg(true), Limits::default()).unwrap();
    let script = b"EHLO sec\r\nMAIL FROM:<a@r.test>\r\nRCPT TO:<alice@example.com>\r\nDATA\r\n\
X-Hostplane-Relay-Id: q1.00ff\r\nSubject: once\r\n\r\nx\r\n.\r\nQUIT\r\n";
    for _ in 0..2 {
        let t = smtp(&s, Mode::Mx, script).await;
        assert_eq!(
            codes(&t),
            ["220", "250", "250", "250", "354", "250", "221"],
            "{t}"
        );
    }
    assert_eq!(new_mail(dir.path(), "alice").len(), 1);
    // the same relay id for another recipient set is a different copy
    let other = String::from_utf8(script.to_vec())
        .unwrap()
        .replace("alice@", "bob@");
    let t = smtp(&s, Mode::Mx, other.as_bytes()).await;
    assert!(t.contains("250 2.0.0"), "{t}");
    assert_eq!(new_mail(dir.path(), "bob").len(), 1);
}
