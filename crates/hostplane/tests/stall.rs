//! A stalled controller must not fail healthy servers over: the controller process
//! is stopped (`SIGSTOP`) for many heartbeat intervals and continued, and no server
//! turns `suspect` or `down` and no site moves; a server that really dies afterwards
//! is still marked down and its site failed over (real `hostplane` processes through
//! `testkit`).

#![allow(clippy::unwrap_used)] // test helpers outside #[test] fns may panic

use std::time::Duration;

use proto::agent_v1::RoleConfig;
use proto::v1::{CreateDomain, CreateSite};
use testkit::{Options, TestCluster};

const BIN: &str = env!("CARGO_BIN_EXE_hostplane");
/// Generous bound for anything that normally takes well under a second.
const T: Duration = Duration::from_secs(10);

/// Sends `SIGCONT` when dropped, so a failing test never leaves the controller
/// stopped (the cluster's own drop then kills it).
struct Stopped(u32);

impl Stopped {
    fn new(pid: u32) -> Self {
        signal("STOP", pid);
        Self(pid)
    }
}

impl Drop for Stopped {
    fn drop(&mut self) {
        signal("CONT", self.0);
    }
}

fn signal(sig: &str, pid: u32) {
    let status = std::process::Command::new("kill")
        .args([&format!("-{sig}"), &pid.to_string()])
        .status()
        .unwrap();
    assert!(status.success(), "kill -{sig} {pid}: {status}");
}

/// Whether agent `name`'s last desired config has `domain` active.
fn serves(c: &TestCluster, name: &str, domain: &str) -> bool {
    match c.agent_desired(name).unwrap().map(|d| d.role) {
        Some(RoleConfig::Web(w)) => w.sites.iter().any(|s| s.domain == domain && s.active),
        _ => false,
    }
}

/// The `server.health` events as (server, from, to).
async fn health_events(c: &TestCluster) -> Vec<(String, String, String)> {
    c.events("server.health")
        .await
        .unwrap()
        .into_iter()
        .map(|e| {
            let s = |k: &str| e.detail[k].as_str().unwrap_or("?").to_owned();
            (e.object.clone(), s("from"), s("to"))
        })
        .collect()
}

#[tokio::test]
async fn a_stalled_controller_fails_nothing_over_and_a_dead_server_still_fails_over() {
    let mut c = TestCluster::start(BIN, Options::default()).await.unwrap();
    for (name, role) in [
        ("web-a", "web"),
        ("dns-1", "dns"),
        ("mail-1", "mail"),
        ("files-1", "files"),
    ] {
        c.add_cluster(name, role, true).await.unwrap();
    }
    c.add_customer("acme").await.unwrap();
    for w in ["w1", "w2", "w3"] {
        c.add_agent(w, "web-a", "GB").await.unwrap();
    }
    for w in ["w1", "w2", "w3"] {
        c.wait_converged(w, T).await.unwrap();
    }
    c.admin()
        .create_domain(&CreateDomain {
            name: "shop.test".into(),
            customer: Some("acme".into()),
            clusters: None,
        })
        .await
        .unwrap();
    let first = c
        .admin()
        .create_site(&CreateSite {
            domain: "shop.test".into(),
            aliases: None,
            php: None,
            mode: Some("single".into()),
            https_redirect: None,
        })
        .await
        .unwrap()
        .active_server
        .unwrap();
    c.wait_until("the site's server serves it", T, async |c| {
        Ok(serves(c, &first, "shop.test"))
    })
    .await
    .unwrap();
    let before = health_events(&c).await;

    // Stopped for 3 s: 15 heartbeat intervals of 200 ms, five suspect windows.
    {
        let _stopped = Stopped::new(c.controller_pid().unwrap());
        tokio::time::sleep(Duration::from_secs(3)).await;
    }
    // Every agent is heard from again after the stall...
    let resumed = time::OffsetDateTime::now_utc();
    c.wait_until("heartbeats after the stall", T, async |c| {
        for w in ["w1", "w2", "w3"] {
            let beat = c.server(w).await?.last_heartbeat.unwrap_or_default();
            let beat =
                time::OffsetDateTime::parse(&beat, &time::format_description::well_known::Rfc3339)?;
            if beat <= resumed {
                return Ok(false);
            }
        }
        Ok(true)
    })
    .await
    .unwrap();
    // ... and several suspect windows later nothing was judged silent or moved.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let after = health_events(&c).await;
    assert_eq!(after, before, "no health transition after a stall");
    for w in ["w1", "w2", "w3"] {
        assert_eq!(c.server(w).await.unwrap().health, "up", "{w}");
    }
    assert!(c.events("site.move").await.unwrap().is_empty());
    assert_eq!(
        c.site("shop.test").await.unwrap().active_server.as_deref(),
        Some(first.as_str())
    );

    // A server that really dies is still marked down and failed over.
    c.kill_agent(&first).unwrap();
    c.wait_health(&first, "down", T).await.unwrap();
    c.wait_until("the site moves", T, async |c| {
        let now = c.site("shop.test").await?.active_server;
        Ok(now.is_some_and(|s| s != first))
    })
    .await
    .unwrap();
    let moves = c.events("site.move").await.unwrap();
    assert_eq!(moves.len(), 1, "{moves:?}");
    assert_eq!(moves[0].detail["from"], first.as_str());
    let to = moves[0].detail["to"].as_str().unwrap().to_owned();
    c.wait_until("the survivor serves it", T, async |c| {
        Ok(serves(c, &to, "shop.test"))
    })
    .await
    .unwrap();
}
