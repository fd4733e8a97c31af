//! The in-memory IMAP session driver: run a session against a byte script with no
//! socket and get the transcript, like [`crate::harness`] does for SMTP and POP3.

use std::net::SocketAddr;
use std::sync::Arc;

use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::server::Shared;

/// Run one IMAP session fed with `script` (no TLS); returns what the server said.
pub async fn run(shared: &Arc<Shared>, script: &[u8]) -> String {
    let shared = Arc::clone(shared);
    let (server, mut client) = tokio::io::duplex(1 << 20);
    let peer = SocketAddr::from(([192, 0, 2, 9], 40001));
    let task = tokio::spawn(super::run(shared, Box::new(server), peer, false));
    let _ = client.write_all(script).await;
    let _ = client.shutdown().await;
    let mut out = Vec::new();
    let _ = client.read_to_end(&mut out).await;
    let _ = task.await;
    String::from_utf8_lossy(&out).into_owned()
}

/// Run one session already logged in as `address` (no password check: tests and
/// fuzzing reach the authenticated commands directly).
pub async fn run_as(shared: &Arc<Shared>, address: &str, script: &[u8]) -> String {
    let Some((local, domain)) = crate::plan::split_address(address) else {
        return String::new();
    };
    let root = crate::maildir::maildir_path(&shared.state_dir, &domain, &local);
    let shared = Arc::clone(shared);
    let (server, mut client) = tokio::io::duplex(1 << 20);
    let peer = SocketAddr::from(([192, 0, 2, 9], 40001));
    let task = tokio::spawn(async move {
        let _ = crate::maildir::ensure(&root);
        let mut s = super::Session::new(shared, Box::new(server), peer, false);
        s.user = Some(super::User { root, quota: 0 });
        s.serve().await;
    });
    let _ = client.write_all(script).await;
    let _ = client.shutdown().await;
    let mut out = Vec::new();
    let _ = client.read_to_end(&mut out).await;
    let _ = task.await;
    String::from_utf8_lossy(&out).into_owned()
}

/// The fuzz entry point (`fuzz/fuzz_targets/imap.rs`): `data` as the command
/// stream of a logged-in session over a scratch Maildir with a few messages.
/// Must never panic, hang or touch anything outside its scratch directory.
pub fn exercise(data: &[u8]) {
    use std::sync::OnceLock;
    static STATE: OnceLock<Option<(std::path::PathBuf, Arc<Shared>)>> = OnceLock::new();
    let Ok(rt) = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    else {
        return;
    };
    let state = STATE.get_or_init(|| {
        let dir = std::env::temp_dir().join(format!("hostplane-imap-fuzz-{}", std::process::id()));
        let _ = std::fs::create_dir_all(&dir);
        let cfg = proto::agent_v1::MailConfig {
            domains: vec![proto::agent_v1::MailDomain {
                domain: "example.com".into(),
                primary: true,
                mailboxes: vec!["alice".into()],
                aliases: vec![],
                accounts: vec![],
                primary_smtp: None,
                dkim: None,
                dkim_rsa: None,
                limits: None,
                site_login: None,
            }],
            tls: None,
            flush: 0,
            peers: Vec::new(),
            writer: None,
        };
        let _guard = rt.enter();
        let shared = crate::harness::shared(&dir, &cfg, crate::server::Limits::default()).ok()?;
        for m in [
            &b"Subject: a\r\n\r\nx\r\n"[..],
            b"Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\n\r\none\r\n--b\r\nContent-Type: message/rfc822\r\n\r\nSubject: in\r\n\r\nz\r\n--b--\r\n",
        ] {
            let _ = crate::maildir::deliver(&dir, "example.com", "alice", "h", m);
        }
        Some((dir, shared))
    });
    let Some((_, shared)) = state else {
        return;
    };
    rt.block_on(async {
        let _ = tokio::time::timeout(
            std::time::Duration::from_secs(10),
            run_as(shared, "alice@example.com", data),
        )
        .await;
    });
}
