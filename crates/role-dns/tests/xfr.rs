//! Our primary → our secondary over real sockets on 127.0.4.x: NOTIFY, IXFR/AXFR,
//! outage, restart from persisted zones, TSIG, transfer ACL; answers checked with dig.

mod common;

use std::process::Command;
use std::sync::atomic::Ordering;

use common::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn secondary_follows_primary_survives_outage_and_restart() {
    require("dig", "bind9-dnsutils");
    let (p_ip, s_ip) = ("127.0.4.1", "127.0.4.2");
    let pdir = tempfile::tempdir().expect("dir");
    let sdir = tempfile::tempdir().expect("dir");
    let zone = "follow.test";
    let p = engine(p_ip, pdir.path()).await;
    p.apply_dns(&cfg(vec![primary(
        content(zone, 1, "192.0.2.1", 3),
        vec![ep(s_ip)],
        None,
    )]))
    .await
    .expect("primary apply");
    assert_eq!(short(p_ip, "www.follow.test", "A"), "192.0.2.1");

    let s = engine(s_ip, sdir.path()).await;
    s.apply_dns(&cfg(vec![secondary(zone, ep(p_ip), None)]))
        .await
        .expect("secondary apply");
    wait_for("first transfer", || {
        short(s_ip, "www.follow.test", "A") == "192.0.2.1"
    })
    .await;

    // A change reaches the secondary through NOTIFY + IXFR.
    for serial in 2..=4u32 {
        let web = format!("192.0.2.{serial}");
        p.apply_dns(&cfg(vec![primary(
            content(zone, serial, &web, 3),
            vec![ep(s_ip)],
            None,
        )]))
        .await
        .expect("primary apply");
        wait_for("changed answer", || {
            short(s_ip, "www.follow.test", "A") == web
        })
        .await;
    }
    assert!(
        s.stats().ixfr.load(Ordering::Relaxed) >= 3,
        "IXFR used for changes"
    );
    let acked = || p.stats().notifies_acked.load(Ordering::Relaxed) >= 3;
    wait_for("NOTIFY answers", acked).await;
    assert!(short(s_ip, "follow.test", "SOA").contains(" 4 2 1 3600 60"));

    // The primary goes away: the secondary keeps answering.
    drop(p);
    tokio::time::sleep(std::time::Duration::from_secs(3)).await;
    assert_eq!(short(s_ip, "www.follow.test", "A"), "192.0.2.4");
    assert_eq!(status(s_ip, "nope.follow.test", "A"), "NXDOMAIN");

    // Restarted with the primary down: answers from the persisted copy at once.
    drop(s);
    let s = engine(s_ip, sdir.path()).await;
    s.apply_dns(&cfg(vec![secondary(zone, ep(p_ip), None)]))
        .await
        .expect("secondary apply");
    assert_eq!(short(s_ip, "www.follow.test", "A"), "192.0.2.4");

    // The stored zone exports to a file named-checkzone accepts.
    let stored = role_dns::persist::load_all(&sdir.path().join("zones"));
    assert_eq!(stored.len(), 1);
    let file = sdir.path().join("export.zone");
    std::fs::write(&file, role_dns::persist::to_text(&stored[0].zone)).expect("write");
    require("named-checkzone", "bind9-utils");
    let check = Command::new("named-checkzone")
        .args(["-k", "fail", zone])
        .arg(&file)
        .output()
        .expect("named-checkzone");
    assert!(
        check.status.success(),
        "{}",
        String::from_utf8_lossy(&check.stdout)
    );

    // Removing the zone from the config drops it (REFUSED) and its stored copy.
    s.apply_dns(&cfg(vec![])).await.expect("apply");
    assert_eq!(status(s_ip, "www.follow.test", "A"), "REFUSED");
    assert!(role_dns::persist::load_all(&sdir.path().join("zones")).is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tsig_transfers_and_acl() {
    require("dig", "bind9-dnsutils");
    let (p_ip, s_ip, stranger) = ("127.0.4.11", "127.0.4.12", "127.0.4.13");
    let pdir = tempfile::tempdir().expect("dir");
    let sdir = tempfile::tempdir().expect("dir");
    let zone = "signed.test";
    let p = engine(p_ip, pdir.path()).await;
    p.apply_dns(&cfg(vec![primary(
        content(zone, 7, "192.0.2.7", 600),
        vec![ep(s_ip)],
        Some(key()),
    )]))
    .await
    .expect("apply");
    let s = engine(s_ip, sdir.path()).await;
    s.apply_dns(&cfg(vec![secondary(zone, ep(p_ip), Some(key()))]))
        .await
        .expect("apply");
    wait_for("signed transfer", || {
        short(s_ip, "h599.signed.test", "A") == "10.0.2.99"
    })
    .await;

    let y = format!("hmac-sha256:xfr.test:{SECRET}");
    // dig verifies our TSIG-signed multi-message AXFR.
    let axfr = dig(p_ip, zone, "AXFR", &["-b", s_ip, "-y", &y]);
    assert!(axfr.contains("h599.signed.test."), "{axfr}");
    assert!(!axfr.contains("failed"), "{axfr}");
    // Unsigned from the allowed address: refused (NOTAUTH).
    let unsigned = dig(p_ip, zone, "AXFR", &["-b", s_ip]);
    assert!(
        unsigned.contains("Transfer failed") && !unsigned.contains("h599"),
        "{unsigned}"
    );
    // Signed with a wrong secret: refused.
    let wrong = dig(
        p_ip,
        zone,
        "AXFR",
        &["-b", s_ip, "-y", "hmac-sha256:xfr.test:d3Jvbmc="],
    );
    assert!(!wrong.contains("h599"), "{wrong}");
    // A stranger, even with the key: REFUSED.
    let refused = dig(p_ip, zone, "AXFR", &["-b", stranger, "-y", &y]);
    assert!(
        refused.contains("Transfer failed") && !refused.contains("h599"),
        "{refused}"
    );
    // A signed change flows by IXFR.
    p.apply_dns(&cfg(vec![primary(
        content(zone, 8, "192.0.2.8", 600),
        vec![ep(s_ip)],
        Some(key()),
    )]))
    .await
    .expect("apply");
    wait_for("signed IXFR", || {
        short(s_ip, "www.signed.test", "A") == "192.0.2.8"
    })
    .await;
    assert!(s.stats().ixfr.load(Ordering::Relaxed) >= 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn secondary_expires_without_primary() {
    require("dig", "bind9-dnsutils");
    let (p_ip, s_ip) = ("127.0.4.31", "127.0.4.32");
    let pdir = tempfile::tempdir().expect("dir");
    let sdir = tempfile::tempdir().expect("dir");
    let zone = "expire.test";
    let mut c = content(zone, 3, "192.0.2.3", 0);
    // SOA expire 3 s.
    c.records[0].data = format!("ns1.{zone}. hostmaster.{zone}. 3 1 1 3 60");
    let p = engine(p_ip, pdir.path()).await;
    p.apply_dns(&cfg(vec![primary(c, vec![ep(s_ip)], None)]))
        .await
        .expect("apply");
    let s = engine(s_ip, sdir.path()).await;
    s.apply_dns(&cfg(vec![secondary(zone, ep(p_ip), None)]))
        .await
        .expect("apply");
    wait_for("transfer", || {
        short(s_ip, "www.expire.test", "A") == "192.0.2.3"
    })
    .await;
    drop(p);
    wait_for("SERVFAIL after expire", || {
        status(s_ip, "www.expire.test", "A") == "SERVFAIL"
    })
    .await;
    // A restart does not resurrect the expired copy.
    drop(s);
    let s = engine(s_ip, sdir.path()).await;
    s.apply_dns(&cfg(vec![secondary(zone, ep(p_ip), None)]))
        .await
        .expect("apply");
    assert_eq!(status(s_ip, "www.expire.test", "A"), "SERVFAIL");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn agent_adapter_applies_role_configs() {
    use proto::agent_v1::{EngineState, RoleConfig};
    require("dig", "bind9-dnsutils");
    let ip = "127.0.4.51";
    let dir = tempfile::tempdir().expect("dir");
    let ctx = agent::supervisor::EngineContext {
        server: "ns1".into(),
        role: "dns".into(),
        bind: ip.parse().expect("ip"),
        state_dir: dir.path().to_path_buf(),
        identity: None,
        options: std::collections::BTreeMap::from([("dns_port".into(), PORT.to_string())]),
        controllers: Vec::new(),
    };
    let mut engine = role_dns::start_engine(&ctx).expect("engine");
    let config = RoleConfig::Dns(cfg(vec![primary(
        content("adapter.test", 1, "192.0.2.9", 0),
        vec![],
        None,
    )]));
    engine.apply(&config).await.expect("apply");
    engine.apply(&config).await.expect("idempotent");
    assert_eq!(short(ip, "www.adapter.test", "A"), "192.0.2.9");
    let health = engine.health();
    assert_eq!(health.state, EngineState::Ok);
    assert!(
        health.detail.contains(&format!("{ip}:{PORT}")),
        "{}",
        health.detail
    );
    // A bad zone, as an update of a good one and as a new one, beside a good new
    // zone (issue 12): the bad update keeps the previous version, the bad new zone
    // stays absent, both are named; the good zone is served.
    let mut bad = content("adapter.test", 2, "192.0.2.10", 0);
    bad.records[0].data = "not a soa".into();
    let mut bad_new = content("new.test", 1, "192.0.2.11", 0);
    bad_new.records[5].data = "300.1.1.1".into();
    let mixed = RoleConfig::Dns(cfg(vec![
        primary(bad, vec![], None),
        primary(bad_new, vec![], None),
        primary(content("good.test", 1, "192.0.2.12", 0), vec![], None),
    ]));
    engine
        .apply(&mixed)
        .await
        .expect("one bad zone does not refuse the config");
    let objects: Vec<String> = engine.rejected().into_iter().map(|r| r.object).collect();
    assert_eq!(objects, vec!["zone adapter.test", "zone new.test"]);
    assert_eq!(short(ip, "www.adapter.test", "A"), "192.0.2.9");
    assert_eq!(short(ip, "www.good.test", "A"), "192.0.2.12");
    assert_eq!(status(ip, "www.new.test", "A"), "REFUSED");
    // Applied again (the agent retries nothing, but a later revision re-renders):
    // still rejected, still the old version.
    engine.apply(&mixed).await.expect("again");
    assert_eq!(engine.rejected().len(), 2);
    assert_eq!(short(ip, "www.adapter.test", "A"), "192.0.2.9");
    // Fixed: applied, nothing rejected.
    engine
        .apply(&RoleConfig::Dns(cfg(vec![primary(
            content("adapter.test", 3, "192.0.2.10", 0),
            vec![],
            None,
        )])))
        .await
        .expect("apply");
    assert!(engine.rejected().is_empty());
    assert_eq!(short(ip, "www.adapter.test", "A"), "192.0.2.10");
    assert_eq!(status(ip, "www.good.test", "A"), "REFUSED");
    // Another role's config is invalid for this engine.
    assert!(engine
        .apply(&RoleConfig::Web(Default::default()))
        .await
        .is_err());
    engine.shutdown().await;
}

/// A key rotation on the primary: our secondary still holding the previous secret
/// keeps transferring (and is notified, the primary falling back to the previous
/// secret) during the grace period; after it, that secondary is refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rotated_key_grace_period() {
    const NEW: &str = "bmV3LXNlY3JldC1uZXctc2VjcmV0LW5ldy1zZWNyZXQh";
    let (p_ip, s_ip) = ("127.0.4.61", "127.0.4.62");
    let pdir = tempfile::tempdir().expect("dir");
    let sdir = tempfile::tempdir().expect("dir");
    let zone = "rotate.test";
    let grace_end = role_dns::tsig::now() + 6;
    let rotated = || {
        let mut k = key();
        k.previous = Some(proto::agent_v1::PreviousTsigSecret {
            secret: k.secret.clone(),
            not_after: grace_end,
        });
        k.secret = NEW.into();
        k
    };
    let p = engine(p_ip, pdir.path()).await;
    let apply_primary = |serial: u32| {
        cfg(vec![primary(
            content(zone, serial, &format!("192.0.2.{serial}"), 0),
            vec![ep(s_ip)],
            Some(rotated()),
        )])
    };
    p.apply_dns(&apply_primary(1)).await.expect("primary apply");
    // The secondary was not switched over: it signs with the old secret.
    let s = engine(s_ip, sdir.path()).await;
    s.apply_dns(&cfg(vec![secondary(zone, ep(p_ip), Some(key()))]))
        .await
        .expect("secondary apply");
    wait_for("transfer with the previous secret", || {
        short(s_ip, "www.rotate.test", "A") == "192.0.2.1"
    })
    .await;
    // A change: NOTIFY (the new secret is refused by the secondary, the previous
    // one answered) and the transfer.
    let acked = p.stats().notifies_acked.load(Ordering::Relaxed);
    p.apply_dns(&apply_primary(2)).await.expect("primary apply");
    wait_for("notified and updated during the grace period", || {
        p.stats().notifies_acked.load(Ordering::Relaxed) > acked
            && short(s_ip, "www.rotate.test", "A") == "192.0.2.2"
    })
    .await;
    // After the grace period the previous secret is refused: signed with it, a
    // transfer fails; with the new one it works.
    while role_dns::tsig::now() <= grace_end {
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    let axfr = |secret: &str| {
        let out = Command::new("dig")
            .args([
                &format!("@{p_ip}"),
                "-p",
                &PORT.to_string(),
                "-b",
                s_ip,
                zone,
                "AXFR",
                "+time=2",
                "+tries=1",
                "-y",
                &format!("hmac-sha256:xfr.test.:{secret}"),
            ])
            .output()
            .expect("dig");
        String::from_utf8_lossy(&out.stdout).contains("192.0.2.2")
    };
    assert!(!axfr(SECRET), "previous secret after the grace period");
    assert!(axfr(NEW), "current secret");
}
