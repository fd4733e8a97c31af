//! The agent adapter: `start_engine` binds the standard ports (or +10000) on the
//! server's address, applies configs live, keeps the previous one on error, and
//! reports its ports and queue in health.

mod common;

use std::collections::BTreeMap;

use agent::supervisor::{EngineContext, EngineRegistry, RoleEngine, Supervisor};
use anyhow::Result;
use common::*;
use proto::agent_v1::{DesiredConfig, EngineState, RoleConfig, ServerIdentity};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn engine_applies_live_and_keeps_previous_config_on_error() -> Result<()> {
    let b = block();
    let ip = ip(b, 1);
    let dir = tempfile::tempdir()?;
    let ctx = EngineContext {
        server: "mx1".into(),
        role: "mail".into(),
        bind: ip,
        state_dir: dir.path().join("engines/mail"),
        identity: None,
        options: BTreeMap::from([("hostname".to_string(), "mx1.example.net".to_string())]),
        controllers: vec![],
    };
    let (mut engine, handle): (Box<dyn RoleEngine>, _) = role_mail::start_engine_with_handle(&ctx)?;
    engine.apply(&RoleConfig::Mail(example(None, None))).await?;
    let h = engine.health();
    assert_eq!(h.state, EngineState::Ok);
    let port = if h.detail.contains(&format!("smtp {ip}:25,")) {
        25
    } else {
        10025
    };
    assert!(
        h.detail.contains(&format!("smtp {ip}:{port}")),
        "{}",
        h.detail
    );
    assert!(
        h.detail.contains("1 domains") && h.detail.contains("queue 0"),
        "{}",
        h.detail
    );

    let mx = format!("{ip}:{port}");
    let r = swaks(&[
        "--server",
        &mx,
        "--from",
        "x@remote.test",
        "--to",
        "alice@example.com",
    ])
    .await?;
    assert!(r.ok, "{}", r.out);
    assert!(r.out.contains("220 mx1.example.net ESMTP"), "{}", r.out);
    assert_eq!(mailbox(&ctx.state_dir, "alice").len(), 1);

    // a bad object is not applied (and named), the rest keeps serving
    let mut bad = example(None, None);
    bad.domains[0].mailboxes.push("../../etc".into());
    engine.apply(&RoleConfig::Mail(bad)).await?;
    let rejected = engine.rejected();
    assert_eq!(rejected.len(), 1, "{rejected:?}");
    assert_eq!(rejected[0].object, "mailbox ../../etc@example.com");
    let r = swaks(&[
        "--server",
        &mx,
        "--from",
        "x@remote.test",
        "--to",
        "bob@example.com",
    ])
    .await?;
    assert!(r.ok, "{}", r.out);

    // a live swap: bob removed
    let mut cfg = example(None, None);
    cfg.domains[0].mailboxes.retain(|m| m != "bob");
    cfg.domains[0].accounts.retain(|a| a.local_part != "bob");
    cfg.domains[0].aliases.clear();
    engine.apply(&RoleConfig::Mail(cfg)).await?;
    let r = swaks(&[
        "--server",
        &mx,
        "--from",
        "x@remote.test",
        "--to",
        "bob@example.com",
    ])
    .await?;
    assert!(!r.ok && r.out.contains("550 5.1.1"), "{}", r.out);
    assert!(handle.queue_list().is_empty());

    // a wrong role is refused
    assert!(engine
        .apply(&RoleConfig::Dns(Default::default()))
        .await
        .is_err());
    engine.shutdown().await;
    Ok(())
}

const PY_POP3_LOGIN: &str = r#"
import poplib, sys
p = poplib.POP3(sys.argv[1], int(sys.argv[2]))
p.user(sys.argv[3])
try:
    p.pass_(sys.argv[4]); print("LOGGED-IN"); p.quit()
except poplib.error_proto as e:
    print("REFUSED", e)
"#;

/// Whether `user` logs in over POP3 with `password` (Python's poplib).
async fn pop3_login(addr: std::net::SocketAddr, user: &str, password: &str) -> Result<bool> {
    let r = python(
        PY_POP3_LOGIN,
        &[
            addr.ip().to_string(),
            addr.port().to_string(),
            user.to_string(),
            password.to_string(),
        ],
    )
    .await?;
    assert!(r.ok, "{}", r.out);
    Ok(r.out.contains("LOGGED-IN"))
}

/// Whether the MX accepts mail for `to` (swaks; 250 after DATA).
async fn delivered(mx: &str, to: &str) -> Result<bool> {
    let r = swaks(&["--server", mx, "--from", "x@remote.test", "--to", to]).await?;
    Ok(r.ok)
}

fn desired(rev: i64, cfg: proto::agent_v1::MailConfig) -> DesiredConfig {
    DesiredConfig {
        format: proto::agent_v1::CONFIG_FORMAT,
        revision: rev,
        server: ServerIdentity {
            name: "mx1".into(),
            role: "mail".into(),
            cluster: "mail-eu".into(),
            rank: 0,
            addresses: vec![],
            hostname: "mx1.example.net".into(),
        },
        role: RoleConfig::Mail(cfg),
    }
}

/// Issue 12: the mailbox `a/b@example.com` (accepted by the API before) made the
/// engine refuse the whole config, so every tenant's changes stopped. Now the bad
/// object is named in the health detail and every other object converges, whether
/// the bad one is new or an update of a good one (which keeps its old version).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_bad_object_does_not_freeze_the_others() -> Result<()> {
    let b = block();
    let ip = ip(b, 2);
    let dir = tempfile::tempdir()?;
    let mut registry = EngineRegistry::new();
    registry.register("mail", role_mail::start_engine);
    let mut sup = Supervisor::new(registry, "mx1".into(), ip, dir.path().to_path_buf())
        .with_engine_env(
            None,
            BTreeMap::from([("hostname".to_string(), "mx1.example.net".to_string())]),
            vec![],
        );
    let good = example(None, None);
    sup.apply(&desired(1, good.clone())).await?;
    assert!(sup.rejected().is_empty());
    let h = &sup.health()[0];
    assert_eq!(h.state, EngineState::Ok, "{}", h.detail);
    let port = |detail: &str, name: &str, standard: u16| {
        if detail.contains(&format!("{name} {standard} "))
            || detail.contains(&format!("{name} {ip}:{standard},"))
        {
            standard
        } else {
            standard + 10000
        }
    };
    let mx = format!("{ip}:{}", port(&h.detail, "smtp", 25));
    let pop3 = std::net::SocketAddr::new(ip, port(&h.detail, "pop3", 110));
    assert!(pop3_login(pop3, "bob@example.com", "bob-pw").await?);
    assert!(!delivered(&mx, "carol@example.com").await?);

    // New: a bad mailbox `a/b` beside a new good one (carol) and bob disabled.
    let mut cfg = good.clone();
    let d = &mut cfg.domains[0];
    d.mailboxes.extend(["a/b".to_string(), "carol".to_string()]);
    d.accounts.push(account("a/b", "ab-pw"));
    d.accounts.push(account("carol", "carol-pw"));
    d.accounts
        .iter_mut()
        .filter(|a| a.local_part == "bob")
        .for_each(|a| a.enabled = false);
    assert!(sup.apply(&desired(2, cfg.clone())).await?, "applied");
    assert!(!sup.needs_retry(), "a bad object is not a failed apply");
    assert_eq!(sup.applied_revision(), 2);
    let rejected = sup.rejected();
    assert_eq!(rejected.len(), 1, "{rejected:?}");
    assert_eq!(rejected[0].object, "mailbox a/b@example.com");
    let h = &sup.health()[0];
    assert_eq!(h.state, EngineState::Degraded);
    assert!(
        h.detail
            .starts_with("1 object not applied: mailbox a/b@example.com ("),
        "{}",
        h.detail
    );
    assert!(
        delivered(&mx, "carol@example.com").await?,
        "new mailbox gets 250"
    );
    assert_eq!(mailbox(&sup_dir(&dir), "carol").len(), 1);
    assert!(!delivered(&mx, "a/b@example.com").await?);
    assert!(!dir.path().join("engines/mail/mail/example.com/a").exists());
    assert!(
        !pop3_login(pop3, "bob@example.com", "bob-pw").await?,
        "disabled"
    );
    assert!(pop3_login(pop3, "carol@example.com", "carol-pw").await?);

    // Update: the good alias `info` and the good login `carol` get bad versions
    // (a destination that is no address, a hash that is no PHC string); both keep
    // their old version while another change (bob enabled again) applies.
    let mut cfg2 = cfg.clone();
    let d = &mut cfg2.domains[0];
    d.aliases[0].1 = vec!["a/b@example.com".into()];
    for a in &mut d.accounts {
        match a.local_part.as_str() {
            "carol" => a.password_hash = "not a hash".into(),
            "bob" => a.enabled = true,
            _ => {}
        }
    }
    sup.apply(&desired(3, cfg2)).await?;
    let objects: Vec<String> = sup.rejected().into_iter().map(|r| r.object).collect();
    assert_eq!(
        objects,
        vec![
            "alias info@example.com",
            "mailbox a/b@example.com",
            "mailbox carol@example.com"
        ]
    );
    assert!(
        pop3_login(pop3, "carol@example.com", "carol-pw").await?,
        "old hash kept"
    );
    assert!(
        pop3_login(pop3, "bob@example.com", "bob-pw").await?,
        "bob enabled again"
    );
    let before = mailbox(&sup_dir(&dir), "alice").len();
    assert!(delivered(&mx, "info@example.com").await?, "old alias kept");
    assert_eq!(mailbox(&sup_dir(&dir), "alice").len(), before + 1);

    // Deleting the bad objects clears the list and the health.
    sup.apply(&desired(4, good)).await?;
    assert!(sup.rejected().is_empty());
    assert_eq!(sup.health()[0].state, EngineState::Ok);
    sup.shutdown().await;
    Ok(())
}

fn sup_dir(dir: &tempfile::TempDir) -> std::path::PathBuf {
    dir.path().join("engines/mail")
}
