//! A mass-silence hold shows in `hostplane events`: when every server of a cluster
//! falls silent at once the controller holds them (no failover) and records one
//! `health.hold_started` per scope; when they come back, one `health.hold_ended` per
//! scope — never one per tick (real `hostplane` processes through `testkit`).

#![allow(clippy::unwrap_used)] // test helpers outside #[test] fns may panic

use std::time::Duration;

use testkit::{Options, TestCluster};

const BIN: &str = env!("CARGO_BIN_EXE_hostplane");
/// Generous bound for anything that normally takes well under a second.
const T: Duration = Duration::from_secs(10);
const SERVERS: [&str; 3] = ["w1", "w2", "w3"];

/// The hold events of `action` as their `scope` (`platform` or a cluster's name).
async fn scopes(c: &TestCluster, action: &str) -> Vec<String> {
    let mut v: Vec<String> = c
        .events(action)
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.detail["scope"].as_str().unwrap_or("?").to_owned())
        .collect();
    v.sort();
    v
}

#[tokio::test]
async fn a_mass_silence_hold_is_one_event_when_it_starts_and_one_when_it_ends() {
    let mut c = TestCluster::start(BIN, Options::default()).await.unwrap();
    c.add_cluster("web-a", "web", true).await.unwrap();
    for w in SERVERS {
        c.add_agent(w, "web-a", "GB").await.unwrap();
    }
    for w in SERVERS {
        c.wait_converged(w, T).await.unwrap();
    }
    assert!(scopes(&c, "health.hold_started").await.is_empty());

    // All three fall silent together: held (cluster and platform), nobody goes down.
    for w in SERVERS {
        c.kill_agent(w).unwrap();
    }
    c.wait_until("the hold is recorded", T, async |c| {
        Ok(scopes(c, "health.hold_started").await.len() == 2)
    })
    .await
    .unwrap();
    let started = c.events("health.hold_started").await.unwrap();
    let silent: Vec<&str> = started[0].detail["silent"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|v| v.as_str())
        .collect();
    assert_eq!(silent, SERVERS, "{started:?}");
    // Many ticks later, still one event per scope.
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(
        scopes(&c, "health.hold_started").await,
        ["platform", "web-a"]
    );
    assert!(scopes(&c, "health.hold_ended").await.is_empty());

    // They come back: the hold ends, once per scope.
    for w in SERVERS {
        c.restart_agent(w).unwrap();
    }
    c.wait_until("the end of the hold is recorded", T, async |c| {
        Ok(scopes(c, "health.hold_ended").await.len() == 2)
    })
    .await
    .unwrap();
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(scopes(&c, "health.hold_ended").await, ["platform", "web-a"]);
    assert_eq!(
        scopes(&c, "health.hold_started").await,
        ["platform", "web-a"]
    );
}
