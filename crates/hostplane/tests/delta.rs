//! Delta configs with real processes (through `testkit`): an agent that holds a
//! whole config follows changes through deltas (items plus the blobs it lacks),
//! rebuilds the same whole document on disk, and after the controller restarts
//! (its history lost) converges through a snapshot.

#![allow(clippy::unwrap_used)] // test helpers outside #[test] fns may panic

use std::time::Duration;

use proto::agent_v1::{RoleConfig, WebSite};
use proto::v1::{CreateDomain, CreateSite};
use testkit::{Options, TestCluster};

const BIN: &str = env!("CARGO_BIN_EXE_hostplane");
/// Generous bound for anything that normally takes well under a second.
const T: Duration = Duration::from_secs(15);

async fn site(c: &TestCluster, domain: &str) {
    c.admin()
        .create_domain(&CreateDomain {
            name: domain.into(),
            customer: Some("acme".into()),
            clusters: Some([("web".to_string(), "web-a".to_string())].into()),
        })
        .await
        .unwrap();
    c.admin()
        .create_site(&CreateSite {
            domain: domain.into(),
            aliases: None,
            php: None,
            mode: Some("all".into()),
            https_redirect: None,
        })
        .await
        .unwrap();
}

fn sites(c: &TestCluster, name: &str) -> Vec<WebSite> {
    match c.agent_desired(name).unwrap().map(|d| d.role) {
        Some(RoleConfig::Web(w)) => w.sites.iter().map(|s| (**s).clone()).collect(),
        _ => Vec::new(),
    }
}

/// Whether the agent's cached whole config has `domain` with its TLS material.
fn has_site_with_tls(c: &TestCluster, name: &str, domain: &str) -> bool {
    sites(c, name)
        .iter()
        .any(|s| s.domain == domain && s.tls.is_some())
}

/// Lines of the agent's log that report an applied delta, as (from, to).
fn deltas(c: &TestCluster, name: &str) -> Vec<(i64, i64)> {
    let field = |line: &str, key: &str| -> Option<i64> {
        let rest = line.split(&format!("{key}=")).nth(1)?;
        rest.split(|ch: char| !ch.is_ascii_digit())
            .next()?
            .parse()
            .ok()
    };
    c.agent_log(name)
        .unwrap()
        .lines()
        .filter(|l| l.contains("delta config applied"))
        .filter_map(|l| Some((field(l, "from")?, field(l, "to")?)))
        .collect()
}

#[tokio::test]
async fn an_agent_converges_through_deltas_and_a_snapshot_after_a_controller_restart() {
    let mut c = TestCluster::start(BIN, Options::default()).await.unwrap();
    for (name, role, default) in [
        ("web-a", "web", true),
        ("dns-1", "dns", true),
        ("mail-1", "mail", true),
        ("files-1", "files", true),
    ] {
        c.add_cluster(name, role, default).await.unwrap();
    }
    c.add_customer("acme").await.unwrap();
    c.add_agent("w1", "web-a", "DE").await.unwrap();
    c.wait_converged("w1", T).await.unwrap();

    // The first config arrives whole; every change after it as a delta.
    for domain in ["a.test", "b.test"] {
        site(&c, domain).await;
        c.wait_until(domain, T, async |c| Ok(has_site_with_tls(c, "w1", domain)))
            .await
            .unwrap();
    }
    let s = c.wait_converged("w1", T).await.unwrap();
    let held = c.agent_desired("w1").unwrap().unwrap();
    proto::agent_delta::split(&held.role).expect("the config splits");
    let d = deltas(&c, "w1");
    assert!(
        d.iter().any(|(from, _)| *from > 0),
        "changes came as deltas: {d:?}\n{}",
        c.agent_log("w1").unwrap()
    );
    assert_eq!(
        c.agent_desired("w1").unwrap().unwrap().revision,
        s.config_revision.unwrap()
    );

    // A restarted controller has no history: the agent's revision is unknown to
    // it, so the agent gets a snapshot and converges.
    c.stop_controller().unwrap();
    c.start_controller().await.unwrap();
    site(&c, "c.test").await;
    c.wait_until("c.test after the restart", T, async |c| {
        Ok(has_site_with_tls(c, "w1", "c.test"))
    })
    .await
    .unwrap();
    let s = c.wait_converged("w1", T).await.unwrap();
    let after_restart = deltas(&c, "w1");
    assert!(
        after_restart[d.len()..].iter().any(|(from, _)| *from == 0),
        "a snapshot after the restart: {after_restart:?}"
    );
    let held = c.agent_desired("w1").unwrap().unwrap();
    assert_eq!(held.revision, s.config_revision.unwrap());
    let names: Vec<&str> = match &held.role {
        RoleConfig::Web(w) => w.sites.iter().map(|s| s.domain.as_str()).collect(),
        _ => Vec::new(),
    };
    assert_eq!(names, ["a.test", "b.test", "c.test"]);
}
