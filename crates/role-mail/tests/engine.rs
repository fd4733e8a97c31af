//! The agent adapter: `start_engine` binds the standard ports (or +10000) on the
//! server's address, applies configs live, keeps the previous one on error, and
//! reports its ports and queue in health.

mod common;

use std::collections::BTreeMap;

use agent::supervisor::{EngineContext, RoleEngine};
use anyhow::Result;
use common::*;
use proto::agent_v1::{EngineState, RoleConfig};

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

    // a bad config is refused and the old one keeps serving
    let mut bad = example(None, None);
    bad.domains[0].mailboxes.push("../../etc".into());
    assert!(engine.apply(&RoleConfig::Mail(bad)).await.is_err());
    assert_eq!(engine.health().state, EngineState::Degraded);
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
