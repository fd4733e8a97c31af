//! Shared helpers of the role-mail integration tests: per-test loopback addresses,
//! servers on them, certificates from rcgen, real client processes.

#![allow(dead_code, missing_docs, clippy::unwrap_used)]

pub mod pki;

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use proto::agent_v1::{MailAccount, MailConfig, MailDomain, TlsMaterial};
use role_mail::{Limits, Listeners, MailServer};

static COUNTER: AtomicU32 = AtomicU32::new(0);

/// A block of loopback addresses `127.A.B.x` owned by one test (pid + counter,
/// the same scheme as testkit's `AddrBlock`).
pub fn block() -> [u8; 2] {
    const SPAN: u32 = 253 * 256;
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let v = (std::process::id().wrapping_mul(64) % SPAN + n % 64) % SPAN;
    [
        u8::try_from(2 + v / 256).unwrap_or(254),
        u8::try_from(v % 256).unwrap_or(0),
    ]
}

pub fn ip(block: [u8; 2], host: u8) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(127, block[0], block[1], host))
}

/// An argon2id hash of `pw`.
pub fn hash(pw: &str) -> String {
    use argon2::password_hash::{PasswordHasher, SaltString};
    let salt = SaltString::encode_b64(b"0123456789abcdef").unwrap();
    argon2::Argon2::default()
        .hash_password(pw.as_bytes(), &salt)
        .unwrap()
        .to_string()
}

/// A self-signed certificate for `mx.test` and `ip`.
pub fn tls(ip: IpAddr) -> TlsMaterial {
    let ck =
        rcgen::generate_simple_self_signed(vec!["mx.test".to_string(), ip.to_string()]).unwrap();
    TlsMaterial {
        cert_pem: ck.cert.pem().into(),
        key_pem: ck.signing_key.serialize_pem().into(),
    }
}

pub fn account(l: &str, pw: &str) -> MailAccount {
    MailAccount {
        local_part: l.into(),
        password_hash: hash(pw),
        quota_mb: 0,
        enabled: true,
    }
}

/// example.com with alice, bob (passwords `<name>-pw`) and aliases; a primary when
/// `primary_smtp` is `None`.
pub fn example(primary_smtp: Option<SocketAddr>, tls: Option<TlsMaterial>) -> MailConfig {
    MailConfig {
        domains: vec![MailDomain {
            domain: "example.com".into(),
            primary: primary_smtp.is_none(),
            mailboxes: vec!["alice".into(), "bob".into()],
            aliases: vec![
                ("info".into(), vec!["alice@example.com".into()]),
                (
                    "team".into(),
                    vec!["alice@example.com".into(), "bob@example.com".into()],
                ),
            ],
            accounts: if primary_smtp.is_none() {
                vec![account("alice", "alice-pw"), account("bob", "bob-pw")]
            } else {
                vec![]
            },
            primary_smtp: primary_smtp.map(|a| a.to_string()),
            dkim: None,
            dkim_rsa: None,
            limits: None,
            site_login: None,
        }],
        tls,
        flush: 0,
        peers: Vec::new(),
        writer: None,
    }
}

/// Listeners on `ip`, the MX on `mx_port` (0 = any).
pub fn listeners(ip: IpAddr, mx_port: u16) -> Result<Listeners> {
    let bind = |port: u16| -> Result<tokio::net::TcpListener> {
        let l = std::net::TcpListener::bind(SocketAddr::new(ip, port))?;
        l.set_nonblocking(true)?;
        Ok(tokio::net::TcpListener::from_std(l)?)
    };
    Ok(Listeners {
        mx: bind(mx_port)?,
        submission: bind(0)?,
        submissions: bind(0)?,
        pop3: bind(0)?,
        pop3s: bind(0)?,
        imap: bind(0)?,
        imaps: bind(0)?,
    })
}

/// A server on `ip` serving `cfg`.
pub fn server(
    ip: IpAddr,
    mx_port: u16,
    dir: &Path,
    cfg: &MailConfig,
    limits: Limits,
) -> Result<MailServer> {
    let s = MailServer::start(listeners(ip, mx_port)?, dir, "mx.test", Some(ip), limits)?;
    let rejected = s.apply(cfg);
    if !rejected.is_empty() {
        bail!("objects not applied: {rejected:?}");
    }
    Ok(s)
}

/// Output of a finished client process.
pub struct Run {
    pub ok: bool,
    pub out: String,
}

/// Run `program` (must be installed: a missing tool fails the test).
pub async fn run(program: &str, args: &[String]) -> Result<Run> {
    let out = tokio::time::timeout(
        Duration::from_secs(120),
        tokio::process::Command::new(program)
            .args(args)
            .kill_on_drop(true)
            .stdin(std::process::Stdio::null())
            .output(),
    )
    .await
    .context("client timed out")?
    .with_context(|| format!("{program} is required (apt package {program})"))?;
    Ok(Run {
        ok: out.status.success(),
        out: format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    })
}

pub async fn swaks(args: &[&str]) -> Result<Run> {
    let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
    run("swaks", &args).await
}

pub async fn python(script: &str, args: &[String]) -> Result<Run> {
    let mut a = vec!["-c".to_string(), script.to_string()];
    a.extend_from_slice(args);
    run("python3", &a).await
}

/// Messages in `new/` and `cur/` of `local@example.com`.
pub fn mailbox(dir: &Path, local: &str) -> Vec<String> {
    let md: PathBuf = dir.join("mail/example.com").join(local).join("Maildir");
    let mut v = Vec::new();
    for sub in ["new", "cur"] {
        if let Ok(rd) = std::fs::read_dir(md.join(sub)) {
            for e in rd.flatten() {
                v.push(
                    String::from_utf8_lossy(&std::fs::read(e.path()).unwrap_or_default())
                        .into_owned(),
                );
            }
        }
    }
    v
}

/// Wait until `f` holds (polling), or fail after a generous deadline.
pub async fn wait_for(what: &str, mut f: impl FnMut() -> bool) -> Result<()> {
    let deadline = Instant::now() + Duration::from_secs(60);
    while !f() {
        if Instant::now() > deadline {
            bail!("timed out waiting for {what}");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Ok(())
}
