//! The controller and several agents as real `hostplane` processes (through
//! `testkit`): join, revision propagation, cached config while the controller is
//! down, heartbeat loss and recovery, failover, drain, and the refusals (join
//! tokens, foreign certificates, customer tokens on agent endpoints).

#![allow(clippy::unwrap_used)] // test helpers outside #[test] fns may panic

use std::time::Duration;

use proto::agent_v1::{RoleConfig, WebSite, CONFIG_PATH, HEARTBEAT_PATH};
use proto::v1::{CreateDomain, CreateSite};
use testkit::{Options, TestCluster};

const BIN: &str = env!("CARGO_BIN_EXE_hostplane");
/// Generous bound for anything that normally takes well under a second.
const T: Duration = Duration::from_secs(10);

async fn cluster() -> TestCluster {
    TestCluster::start(BIN, Options::default()).await.unwrap()
}

/// Web clusters `web-a` (default) and `web-b`, default clusters for the other
/// domain roles, and the customer `acme`.
async fn topology(c: &TestCluster) {
    for (name, role, default) in [
        ("web-a", "web", true),
        ("web-b", "web", false),
        ("dns-1", "dns", true),
        ("mail-1", "mail", true),
        ("files-1", "files", true),
    ] {
        c.add_cluster(name, role, default).await.unwrap();
    }
    c.add_customer("acme").await.unwrap();
}

/// Add domain `domain` on web cluster `web` with a site of `mode`; returns the
/// site's active server.
async fn site(c: &TestCluster, domain: &str, web: &str, mode: &str) -> Option<String> {
    c.admin()
        .create_domain(&CreateDomain {
            name: domain.into(),
            customer: Some("acme".into()),
            clusters: Some([("web".to_string(), web.to_string())].into()),
        })
        .await
        .unwrap();
    c.admin()
        .create_site(&CreateSite {
            domain: domain.into(),
            aliases: None,
            php: None,
            mode: Some(mode.into()),
            https_redirect: None,
        })
        .await
        .unwrap()
        .active_server
}

/// The sites in the desired config agent `name` received (its `desired.json`).
fn cached_sites(c: &TestCluster, name: &str) -> Vec<WebSite> {
    match c.agent_desired(name).unwrap().map(|d| d.role) {
        Some(RoleConfig::Web(w)) => w.sites.iter().map(|s| (**s).clone()).collect(),
        Some(other) => panic!("{name} has a {} config", other.role()),
        None => Vec::new(),
    }
}

/// Whether agent `name` has received `domain` with `active`.
fn has_site(c: &TestCluster, name: &str, domain: &str, active: bool) -> bool {
    cached_sites(c, name)
        .iter()
        .any(|s| s.domain == domain && s.active == active)
}

/// The server.health transitions of `server`, as (from, to).
async fn health_path(c: &TestCluster, server: &str) -> Vec<(String, String)> {
    c.events("server.health")
        .await
        .unwrap()
        .into_iter()
        .filter(|e| e.object == server)
        .map(|e| {
            (
                e.detail["from"].as_str().unwrap_or("?").to_owned(),
                e.detail["to"].as_str().unwrap_or("?").to_owned(),
            )
        })
        .collect()
}

#[tokio::test]
async fn join_reports_health_and_applied_revision() {
    let mut c = cluster().await;
    topology(&c).await;
    let bind = c.add_agent("w1", "web-a", "GB").await.unwrap();
    let s = c.wait_converged("w1", T).await.unwrap();
    assert_eq!(s.health, "up");
    assert_eq!(s.role, "web");
    assert_eq!(s.cluster, "web-a");
    assert_eq!(s.country, "GB");
    assert_eq!(s.addresses, vec![bind.to_string()]);
    assert!(s.last_heartbeat.is_some());
    let rev = s.config_revision.unwrap();
    assert!(rev > 0);
    assert_eq!(s.applied_revision, Some(rev));
    // The agent holds the same config on disk and says it applied it.
    assert_eq!(c.agent_desired("w1").unwrap().unwrap().revision, rev);
    c.wait_until("status file", T, async |c| {
        Ok(c.agent_status("w1")?.map(|s| s.applied_revision) == Some(rev))
    })
    .await
    .unwrap();
    let status = c.agent_status("w1").unwrap().unwrap();
    assert_eq!(status.server, "w1");
    assert_eq!(status.engines[0].name, "web");
    let joins = c.events("server.join").await.unwrap();
    assert_eq!(joins.len(), 1, "{joins:?}");
    assert_eq!(joins[0].object, "w1");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let dir = c.agent("w1").unwrap().state_dir.join("identity");
        for (file, want) in [("key.pem", 0o600), ("cert.pem", 0o644)] {
            let mode = std::fs::metadata(dir.join(file))
                .unwrap()
                .permissions()
                .mode()
                & 0o777;
            assert_eq!(mode, want, "{file}");
        }
    }
}

#[tokio::test]
async fn a_change_reaches_only_the_affected_cluster() {
    let mut c = cluster().await;
    topology(&c).await;
    c.add_agent("a1", "web-a", "GB").await.unwrap();
    c.add_agent("a2", "web-a", "GB").await.unwrap();
    c.add_agent("b1", "web-b", "US").await.unwrap();
    let mut before = std::collections::BTreeMap::new();
    for n in ["a1", "a2", "b1"] {
        before.insert(n, c.wait_converged(n, T).await.unwrap().applied_revision);
    }

    site(&c, "shop.test", "web-a", "all").await;
    for n in ["a1", "a2"] {
        c.wait_until(&format!("{n} has shop.test"), T, async |c| {
            Ok(has_site(c, n, "shop.test", true))
        })
        .await
        .unwrap();
        let s = c.wait_converged(n, T).await.unwrap();
        assert!(s.applied_revision > before[n], "{n}: {s:?}");
    }
    // Give a wrongly sent change time to arrive, then check web-b saw nothing.
    tokio::time::sleep(Duration::from_millis(1000)).await;
    let b1 = c.server("b1").await.unwrap();
    assert_eq!(b1.applied_revision, before["b1"]);
    assert_eq!(b1.config_revision, before["b1"]);
    assert!(cached_sites(&c, "b1").is_empty());
    assert_eq!(
        c.agent_desired("b1").unwrap().unwrap().revision,
        before["b1"].unwrap()
    );

    // And the other way round: a web-b site leaves web-a alone.
    let a1 = c.server("a1").await.unwrap().applied_revision;
    site(&c, "blog.test", "web-b", "all").await;
    c.wait_until("b1 has blog.test", T, async |c| {
        Ok(has_site(c, "b1", "blog.test", true))
    })
    .await
    .unwrap();
    c.wait_converged("b1", T).await.unwrap();
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(c.server("a1").await.unwrap().applied_revision, a1);
    assert!(!has_site(&c, "a1", "blog.test", true));
}

#[tokio::test]
async fn restarted_agent_serves_its_cache_while_the_controller_is_down() {
    let mut c = cluster().await;
    topology(&c).await;
    c.add_agent("w1", "web-a", "GB").await.unwrap();
    c.wait_converged("w1", T).await.unwrap();
    site(&c, "shop.test", "web-a", "single").await;
    c.wait_until("w1 has shop.test", T, async |c| {
        Ok(has_site(c, "w1", "shop.test", true))
    })
    .await
    .unwrap();
    let rev = c
        .wait_converged("w1", T)
        .await
        .unwrap()
        .config_revision
        .unwrap();

    c.stop_controller().unwrap();
    c.kill_agent("w1").unwrap();
    c.clear_agent_status("w1").unwrap();
    c.restart_agent("w1").unwrap();
    // With no controller, the new process applies its cached config.
    c.wait_until("w1 applies its cache", T, async |c| {
        Ok(c.agent_status("w1")?.map(|s| s.applied_revision) == Some(rev))
    })
    .await
    .unwrap();
    assert!(
        c.agent_exit("w1").unwrap().is_none(),
        "the agent must keep running"
    );
    assert!(has_site(&c, "w1", "shop.test", true));

    // The controller returns on the same address: the agent reports in again
    // and watches for changes.
    c.start_controller().await.unwrap();
    let s = c
        .wait_converged("w1", Duration::from_secs(15))
        .await
        .unwrap();
    // A restarted controller numbers configs from the store revision it finds (health
    // events may already have moved it), so the revision may be higher; never lower.
    assert!(
        s.config_revision >= Some(rev),
        "{:?} < {rev}",
        s.config_revision
    );
    site(&c, "blog.test", "web-a", "single").await;
    c.wait_until(
        "w1 receives blog.test",
        Duration::from_secs(15),
        async |c| Ok(has_site(c, "w1", "blog.test", true)),
    )
    .await
    .unwrap();
    let s = c.wait_converged("w1", T).await.unwrap();
    assert!(s.applied_revision.unwrap() > rev);
}

#[tokio::test]
async fn heartbeat_loss_suspect_down_and_recovery() {
    let mut c = cluster().await;
    topology(&c).await;
    c.add_agent("w1", "web-a", "GB").await.unwrap();
    c.wait_converged("w1", T).await.unwrap();

    c.kill_agent("w1").unwrap();
    c.wait_health("w1", "down", T).await.unwrap();
    // (A heavily loaded machine may add a spurious suspect → up before the kill;
    // the path ends the same way.) The transition is recorded as an event just
    // after the health changes in memory, so wait for the record too.
    let pair = |f: &str, t: &str| (f.to_owned(), t.to_owned());
    c.wait_until("w1's down transition recorded", T, async |c| {
        Ok(health_path(c, "w1").await.last() == Some(&pair("suspect", "down")))
    })
    .await
    .unwrap();
    let path = health_path(&c, "w1").await;
    assert_eq!(path.first(), Some(&pair("unknown", "up")), "{path:?}");
    assert!(
        path.ends_with(&[pair("up", "suspect"), pair("suspect", "down")]),
        "{path:?}"
    );

    c.restart_agent("w1").unwrap();
    c.wait_converged("w1", T).await.unwrap();
    c.wait_until("w1's recovery recorded", T, async |c| {
        Ok(health_path(c, "w1").await.last() == Some(&pair("down", "up")))
    })
    .await
    .unwrap();
}

#[tokio::test]
async fn single_site_fails_over_when_its_server_dies() {
    let mut c = cluster().await;
    topology(&c).await;
    c.add_agent("w1", "web-a", "GB").await.unwrap();
    c.add_agent("w2", "web-a", "GB").await.unwrap();
    c.wait_converged("w1", T).await.unwrap();
    c.wait_converged("w2", T).await.unwrap();
    let first = site(&c, "shop.test", "web-a", "single").await.unwrap();
    let other = if first == "w1" { "w2" } else { "w1" };
    c.wait_until("the active server has the site active", T, async |c| {
        Ok(has_site(c, &first, "shop.test", true) && has_site(c, other, "shop.test", false))
    })
    .await
    .unwrap();

    c.kill_agent(&first).unwrap();
    c.wait_health(&first, "down", T).await.unwrap();
    c.wait_until("the site moves", T, async |c| {
        Ok(c.site("shop.test").await?.active_server.as_deref() == Some(other))
    })
    .await
    .unwrap();
    // The survivor's own desired config (what its agent received) has it active.
    c.wait_until("the survivor serves it", T, async |c| {
        Ok(has_site(c, other, "shop.test", true))
    })
    .await
    .unwrap();
    c.wait_converged(other, T).await.unwrap();
    let moves = c.events("site.move").await.unwrap();
    assert_eq!(moves.len(), 1, "{moves:?}");
    assert_eq!(moves[0].detail["from"], first.as_str());
    assert_eq!(moves[0].detail["to"], other);
}

#[tokio::test]
async fn drain_moves_sites_and_undrain_makes_the_server_eligible_again() {
    let mut c = cluster().await;
    topology(&c).await;
    c.add_agent("w1", "web-a", "GB").await.unwrap();
    c.add_agent("w2", "web-a", "GB").await.unwrap();
    c.wait_converged("w1", T).await.unwrap();
    c.wait_converged("w2", T).await.unwrap();
    let first = site(&c, "shop.test", "web-a", "single").await.unwrap();
    let other = if first == "w1" { "w2" } else { "w1" };

    let (status, body) = c
        .admin_post(
            &format!("/v1/servers/{first}/drain"),
            &serde_json::json!({}),
        )
        .await
        .unwrap();
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["drained"], true);
    assert_eq!(
        c.site("shop.test").await.unwrap().active_server.as_deref(),
        Some(other)
    );
    c.wait_until("the other server serves it", T, async |c| {
        Ok(has_site(c, other, "shop.test", true) && has_site(c, &first, "shop.test", false))
    })
    .await
    .unwrap();
    // A drained server takes no new single site.
    assert_eq!(
        site(&c, "blog.test", "web-a", "single").await.as_deref(),
        Some(other)
    );

    let (status, body) = c
        .admin_post(
            &format!("/v1/servers/{first}/undrain"),
            &serde_json::json!({}),
        )
        .await
        .unwrap();
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["drained"], false);
    // Eligible again: draining the other server moves everything back to it.
    let (status, body) = c
        .admin_post(
            &format!("/v1/servers/{other}/drain"),
            &serde_json::json!({}),
        )
        .await
        .unwrap();
    assert_eq!(status, 200, "{body}");
    for d in ["shop.test", "blog.test"] {
        assert_eq!(
            c.site(d).await.unwrap().active_server.as_deref(),
            Some(first.as_str()),
            "{d}"
        );
    }
    c.wait_until("both sites back on the first server", T, async |c| {
        Ok(has_site(c, &first, "shop.test", true) && has_site(c, &first, "blog.test", true))
    })
    .await
    .unwrap();
}

#[tokio::test]
async fn reused_expired_and_forged_join_tokens_are_refused() {
    let mut c = cluster().await;
    topology(&c).await;
    let used = c.join_token("web-a").await.unwrap().token;
    c.add_agent_with_token("w1", &used, "GB").unwrap();
    c.wait_converged("w1", T).await.unwrap();

    let expired = c.join_token("web-a").await.unwrap().token;
    c.expire_join_token(&expired).await.unwrap();
    let valid = c.join_token("web-a").await.unwrap().token;
    let (prefix, secret) = valid.rsplit_once('_').unwrap();
    let flipped: String = secret
        .chars()
        .map(|ch| if ch == 'a' { 'b' } else { 'a' })
        .collect();
    let forged = format!("{prefix}_{flipped}");
    assert_ne!(forged, valid);

    for (name, token) in [("w2", &used), ("w3", &expired), ("w4", &forged)] {
        c.add_agent_with_token(name, token, "GB").unwrap();
    }
    for name in ["w2", "w3", "w4"] {
        c.wait_until(&format!("{name} gives up"), T, async |c| {
            Ok(c.agent_exit(name)?.is_some())
        })
        .await
        .unwrap();
        let exit = c.agent_exit(name).unwrap().unwrap();
        assert!(!exit.success(), "{name} exited {exit}");
        let log = c.agent_log(name).unwrap();
        assert!(log.contains("refused"), "{name}: {log}");
        let err = c.server(name).await.unwrap_err();
        assert!(
            err.to_string().contains("404") || err.to_string().contains("no server"),
            "{err:#}"
        );
    }
    let mut reasons: Vec<String> = c
        .events("join.refused")
        .await
        .unwrap()
        .iter()
        .map(|e| e.detail["reason"].as_str().unwrap_or("").to_owned())
        .collect();
    reasons.sort();
    assert_eq!(reasons, ["expired", "forged", "unknown_or_used"]);
    let servers: Vec<String> = c
        .admin()
        .list_all_servers(&Default::default())
        .await
        .unwrap()
        .into_iter()
        .map(|s| s.name)
        .collect();
    assert_eq!(servers, ["w1"]);
    // The unused valid token still works: refusals consumed nothing.
    c.add_agent_with_token("w5", &valid, "GB").unwrap();
    c.wait_converged("w5", T).await.unwrap();
}

#[tokio::test]
async fn foreign_certificates_and_customer_tokens_are_refused_on_agent_endpoints() {
    let mut c = cluster().await;
    topology(&c).await;
    c.add_agent("w1", "web-a", "GB").await.unwrap();
    c.wait_converged("w1", T).await.unwrap();
    let config_url = format!("{}{CONFIG_PATH}?after=0", c.url());
    let heartbeat_url = format!("{}{HEARTBEAT_PATH}", c.url());

    // Without any client certificate the TLS connection works (and the agent
    // endpoint refuses): so a failure below is the certificate's doing.
    let plain = c.http().get(&config_url).send().await.unwrap();
    assert!(
        [401, 403].contains(&plain.status().as_u16()),
        "{}",
        plain.status()
    );

    // A certificate for w1 from another CA: the handshake fails.
    let (cert, key) = testkit::foreign_client_cert("w1").unwrap();
    let intruder = c.mtls_client(&cert, &key).unwrap();
    let r = intruder.get(&config_url).send().await;
    assert!(r.is_err(), "a foreign certificate must not connect: {r:?}");

    // A customer's API token is no agent identity.
    let token = c.api_token_for("acme").await.unwrap();
    let r = c
        .http()
        .get(&config_url)
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert!([401, 403].contains(&r.status().as_u16()), "{}", r.status());
    let r = c
        .http()
        .post(&heartbeat_url)
        .bearer_auth(&token)
        .json(&serde_json::json!({
            "applied_revision": 1, "engines": [], "agent_version": "0"
        }))
        .send()
        .await
        .unwrap();
    assert!([401, 403].contains(&r.status().as_u16()), "{}", r.status());
    // w1 was not disturbed.
    assert_eq!(c.server("w1").await.unwrap().health, "up");
}

/// The DNS server's `addr:port` as its engine reports it (`serving N zones on ADDR`).
async fn dns_endpoint(c: &TestCluster, name: &str) -> Option<(String, String)> {
    let view = c.server(name).await.ok()?;
    let detail = &view.engines.iter().find(|e| e.name == "dns")?.detail;
    // "serving N zones (...) on IP:PORT; transfers in: ..."
    let addr: std::net::SocketAddr = detail
        .split_whitespace()
        .skip_while(|w| *w != "on")
        .nth(1)?
        .trim_end_matches(';')
        .parse()
        .ok()?;
    Some((addr.ip().to_string(), addr.port().to_string()))
}

/// `dig +short` for A records of `name` at one server, sorted.
fn dig_a(server: &(String, String), name: &str) -> Vec<String> {
    let out = std::process::Command::new("dig")
        .args([
            &format!("@{}", server.0),
            "-p",
            &server.1,
            name,
            "A",
            "+short",
            "+norecurse",
            "+time=1",
            "+tries=1",
        ])
        .output()
        .expect("`dig` not found: install bind9-dnsutils (scripts/test does)");
    let mut lines: Vec<String> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| !l.is_empty() && !l.starts_with(';'))
        .map(str::to_owned)
        .collect();
    lines.sort();
    lines
}

/// Both DNS servers answer a site's A records from its healthy web servers; killing
/// one web server withdraws its address from both, and it returns on recovery.
#[tokio::test]
async fn dns_answers_follow_web_health() {
    let mut c = cluster().await;
    topology(&c).await;
    let w1 = c.add_agent("w1", "web-a", "GB").await.unwrap().to_string();
    let w2 = c.add_agent("w2", "web-a", "GB").await.unwrap().to_string();
    c.add_agent("ns1", "dns-1", "GB").await.unwrap();
    c.add_agent("ns2", "dns-1", "US").await.unwrap();
    for n in ["w1", "w2", "ns1", "ns2"] {
        c.wait_converged(n, T).await.unwrap();
    }
    site(&c, "shop.example", "web-a", "all").await;
    let mut servers = Vec::new();
    for ns in ["ns1", "ns2"] {
        c.wait_until("dns engine reports its address", T, async |c| {
            Ok(dns_endpoint(c, ns).await.is_some())
        })
        .await
        .unwrap();
        servers.push(dns_endpoint(&c, ns).await.unwrap());
    }
    let both = {
        let mut v = vec![w1.clone(), w2.clone()];
        v.sort();
        v
    };
    for s in &servers {
        let (s, both) = (s.clone(), both.clone());
        c.wait_until("both web addresses served", T, async move |_| {
            Ok(dig_a(&s, "shop.example") == both)
        })
        .await
        .unwrap();
    }

    c.kill_agent("w1").unwrap();
    let started = std::time::Instant::now();
    for s in &servers {
        let (s, only) = (s.clone(), vec![w2.clone()]);
        c.wait_until("web-1's address withdrawn", T, async move |_| {
            Ok(dig_a(&s, "shop.example") == only)
        })
        .await
        .unwrap();
    }
    eprintln!(
        "w1's address withdrawn from both name servers after {:?}",
        started.elapsed()
    );

    c.restart_agent("w1").unwrap();
    for s in &servers {
        let (s, both) = (s.clone(), both.clone());
        c.wait_until("web-1's address back", T, async move |_| {
            Ok(dig_a(&s, "shop.example") == both)
        })
        .await
        .unwrap();
    }
}

/// Kill the DNS primary: the secondary keeps answering every zone; a change made
/// while the primary is down reaches both name servers once it is back (the
/// secondary gets it from the primary by NOTIFY and zone transfer).
#[tokio::test]
async fn dns_secondary_answers_while_the_primary_is_down_and_catches_up() {
    let mut c = cluster().await;
    topology(&c).await;
    let w1 = c.add_agent("w1", "web-a", "GB").await.unwrap().to_string();
    c.add_agent("ns1", "dns-1", "GB").await.unwrap();
    c.add_agent("ns2", "dns-1", "US").await.unwrap();
    for n in ["w1", "ns1", "ns2"] {
        c.wait_converged(n, T).await.unwrap();
    }
    site(&c, "shop.example", "web-a", "all").await;
    site(&c, "blog.example", "web-a", "single").await;
    let mut servers = Vec::new();
    for ns in ["ns1", "ns2"] {
        c.wait_until("dns engine reports its address", T, async |c| {
            Ok(dns_endpoint(c, ns).await.is_some())
        })
        .await
        .unwrap();
        servers.push(dns_endpoint(&c, ns).await.unwrap());
    }
    for s in &servers {
        for zone in ["shop.example", "blog.example"] {
            let (s, want) = (s.clone(), vec![w1.clone()]);
            c.wait_until("zone answered", T, async move |_| {
                Ok(dig_a(&s, zone) == want)
            })
            .await
            .unwrap();
        }
    }

    c.kill_agent("ns1").unwrap();
    let ns2 = servers[1].clone();
    for zone in ["shop.example", "blog.example"] {
        assert_eq!(dig_a(&ns2, zone), vec![w1.clone()], "{zone} at ns2");
    }
    c.admin()
        .create_dns_record(&proto::v1::CreateDnsRecord {
            domain: "shop.example".into(),
            name: "news".into(),
            ttl: None,
            data: serde_json::json!({"type": "A", "address": "192.0.2.77"}),
        })
        .await
        .unwrap();
    // ns2 still answers the zone as it was while its primary is away.
    assert_eq!(dig_a(&ns2, "shop.example"), vec![w1.clone()]);

    c.restart_agent("ns1").unwrap();
    for s in &servers {
        let s = s.clone();
        c.wait_until("the change made while ns1 was down", T, async move |_| {
            Ok(dig_a(&s, "news.shop.example") == ["192.0.2.77"])
        })
        .await
        .unwrap();
    }
}

/// `ip:port` after the word `word` in an engine's health detail (e.g. `ftp on
/// 127.0.0.41:21`, `on http 127.0.0.11:80`).
async fn engine_addr(c: &TestCluster, server: &str, word: &str) -> Option<String> {
    let view = c.server(server).await.ok()?;
    let detail = &view.engines.first()?.detail;
    let mut words = detail.split_whitespace();
    words.find(|w| *w == word)?;
    let next = words.next()?;
    let next = if next == "on" { words.next()? } else { next };
    let addr: std::net::SocketAddr = next.trim_end_matches([';', ',']).parse().ok()?;
    Some(addr.to_string())
}

/// `curl -s http://addr/` with a Host header.
fn http_get(addr: &str, host: &str, path: &str) -> String {
    let out = std::process::Command::new("curl")
        .args(["-s", "--max-time", "2", "-H", &format!("Host: {host}")])
        .arg(format!("http://{addr}{path}"))
        .output()
        .expect("`curl` not found: install curl (scripts/test does)");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A file uploaded by FTPS to the files server is served by every web server of the
/// site's cluster (site-file replication over mutual TLS); a folder deployed through the API
/// replaces the site's files; with the files server down the web servers keep serving
/// their last copy.
#[tokio::test]
async fn site_content_flows_from_the_files_server_to_every_web_server() {
    let mut c = cluster().await;
    topology(&c).await;
    for (n, cl) in [("w1", "web-a"), ("w2", "web-a"), ("f1", "files-1")] {
        c.add_agent(n, cl, "GB").await.unwrap();
    }
    for n in ["w1", "w2", "f1"] {
        c.wait_converged(n, T).await.unwrap();
    }
    site(&c, "shop.example", "web-a", "all").await;
    c.admin()
        .create_ftp_account(&proto::v1::CreateFtpAccount {
            username: "shop-ftp".into(),
            domain: "shop.example".into(),
            password: Some("ftp-password-123".into()),
            home: None,
            quota_mb: None,
        })
        .await
        .unwrap();
    c.wait_until("files engine up", T, async |c| {
        Ok(engine_addr(c, "f1", "ftp").await.is_some())
    })
    .await
    .unwrap();
    let ftp = engine_addr(&c, "f1", "ftp").await.unwrap();
    let mut webs = Vec::new();
    for w in ["w1", "w2"] {
        c.wait_until("web engine up", T, async |c| {
            Ok(engine_addr(c, w, "http").await.is_some())
        })
        .await
        .unwrap();
        webs.push(engine_addr(&c, w, "http").await.unwrap());
    }

    // FTPS upload (TLS required for logins), verified against the controller CA.
    let dir = tempfile::tempdir().unwrap();
    let ca = dir.path().join("ca.pem");
    std::fs::write(&ca, c.ca_pem()).unwrap();
    let page = dir.path().join("index.html");
    std::fs::write(&page, "<h1>from ftp</h1>\n").unwrap();
    let mut uploaded = false;
    for _ in 0..50 {
        let st = std::process::Command::new("curl")
            .args(["-s", "--ssl-reqd", "--cacert"])
            .arg(&ca)
            .arg("-T")
            .arg(&page)
            .arg(format!("ftp://shop-ftp:ftp-password-123@{ftp}/"))
            .status()
            .unwrap();
        if st.success() {
            uploaded = true;
            break;
        }
        // The account and certificate reach the files server with its next config.
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(uploaded, "FTPS upload to {ftp} failed");
    let started = std::time::Instant::now();
    for w in &webs {
        let w = w.clone();
        c.wait_until("FTP upload served", T, async move |_| {
            Ok(http_get(&w, "shop.example", "/") == "<h1>from ftp</h1>\n")
        })
        .await
        .unwrap();
    }
    eprintln!(
        "FTP upload served by both web servers after {:?}",
        started.elapsed()
    );

    // Deploy a folder through the API: it replaces the site's files.
    let mut tar = tar::Builder::new(Vec::new());
    let body = b"<h1>deployed</h1>\n";
    let mut h = tar::Header::new_gnu();
    h.set_size(body.len() as u64);
    h.set_mode(0o644);
    h.set_cksum();
    tar.append_data(&mut h, "index.html", &body[..]).unwrap();
    let mut h = tar::Header::new_gnu();
    h.set_size(3);
    h.set_mode(0o644);
    h.set_cksum();
    tar.append_data(&mut h, "css/a.css", &b"p{}"[..]).unwrap();
    c.admin()
        .upload_site_content("shop.example", tar.into_inner().unwrap(), |_| {})
        .await
        .unwrap();
    for w in &webs {
        let w = w.clone();
        c.wait_until("deployment served", T, async move |_| {
            Ok(http_get(&w, "shop.example", "/") == "<h1>deployed</h1>\n"
                && http_get(&w, "shop.example", "/css/a.css") == "p{}")
        })
        .await
        .unwrap();
    }

    // Files server down: the web servers keep serving their last synced copy.
    c.kill_agent("f1").unwrap();
    tokio::time::sleep(Duration::from_secs(2)).await;
    for w in &webs {
        assert_eq!(http_get(w, "shop.example", "/"), "<h1>deployed</h1>\n");
    }
}

/// `mysql` as a customer's login against the machine's MariaDB (127.0.0.1:3306).
fn mysql(user: &str, password: &str, db: &str, sql: &str) -> Result<String, String> {
    let out = std::process::Command::new("mysql")
        .args(["-h", "127.0.0.1", "-P", "3306", "-u", user])
        .arg(format!("-p{password}"))
        .args(["-N", "-B", db, "-e", sql])
        .output()
        .expect("`mysql` not found: install mariadb-client (scripts/test does)");
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).trim().to_owned())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).into_owned())
    }
}

/// A database made through the API exists on the db server for its customer's login,
/// its size is reported back, deleting it keeps a dump in the trash that restores the
/// rows, and with the db server killed web, DNS and mail of the same customer's
/// domain keep working.
#[tokio::test]
async fn databases_provision_restore_and_a_dead_db_server_touches_nothing_else() {
    let mut c = cluster().await;
    topology(&c).await;
    c.add_cluster("db-1", "db", true).await.unwrap();
    for (n, cl, country) in [
        ("w1", "web-a", "GB"),
        ("ns1", "dns-1", "GB"),
        ("mx1", "mail-1", "GB"),
        ("d1", "db-1", "GB"),
    ] {
        c.add_agent(n, cl, country).await.unwrap();
    }
    for n in ["w1", "ns1", "mx1", "d1"] {
        c.wait_converged(n, T).await.unwrap();
    }
    site(&c, "shop.example", "web-a", "all").await;
    // Names unique to this run: the db server is the machine's MariaDB.
    let tag = format!("t{}", std::process::id());
    let (db, user, pw) = (format!("{tag}_shop"), format!("{tag}_u"), "db-password-123");
    let api = c.admin();
    api.create_database(&proto::v1::CreateDatabase {
        name: db.clone(),
        engine: "mariadb".into(),
        customer: Some("acme".into()),
        cluster: None,
        domain: Some("shop.example".into()),
        restore_from: None,
    })
    .await
    .unwrap();
    api.create_db_user(&proto::v1::CreateDbUser {
        name: user.clone(),
        // Inferred from the granted database.
        engine: None,
        customer: Some("acme".into()),
        cluster: None,
        password: Some(pw.into()),
        databases: Some(vec![db.clone()]),
    })
    .await
    .unwrap();
    let (u, d) = (user.clone(), db.clone());
    c.wait_until("the login works in its database", T, async move |_| {
        Ok(mysql(&u, pw, &d, "CREATE TABLE IF NOT EXISTS t (x INT)").is_ok())
    })
    .await
    .unwrap();
    mysql(&user, pw, &db, "INSERT INTO t VALUES (7), (8)").unwrap();
    assert!(
        mysql(&user, pw, "mysql", "SELECT 1").is_err(),
        "no access to others"
    );
    let d = db.clone();
    c.wait_until(
        "its size is reported",
        Duration::from_secs(90),
        async move |c| Ok(c.admin().get_database(&d).await?.size_bytes.is_some()),
    )
    .await
    .unwrap();

    // Delete: a dump goes to the trash; restore brings the rows back.
    api.delete_database(&db).await.unwrap();
    let d = db.clone();
    c.wait_until("the dump is in the trash", T, async move |c| {
        Ok(c.admin()
            .list_db_trash()
            .await?
            .iter()
            .any(|t| t.database == d))
    })
    .await
    .unwrap();
    let entry = api
        .list_db_trash()
        .await
        .unwrap()
        .into_iter()
        .find(|t| t.database == db)
        .unwrap();
    api.create_database(&proto::v1::CreateDatabase {
        name: db.clone(),
        engine: "mariadb".into(),
        customer: Some("acme".into()),
        cluster: None,
        domain: None,
        restore_from: Some(entry.name.clone()),
    })
    .await
    .unwrap();
    api.update_db_user(
        &user,
        &proto::v1::UpdateDbUser {
            databases: Some(vec![db.clone()]),
            ..Default::default()
        },
    )
    .await
    .unwrap();
    let (u, d) = (user.clone(), db.clone());
    c.wait_until("the restored rows", T, async move |_| {
        Ok(mysql(&u, pw, &d, "SELECT SUM(x) FROM t").as_deref() == Ok("15"))
    })
    .await
    .unwrap();

    // Clean up on the machine's MariaDB, then kill the db server.
    api.delete_db_user(&user).await.unwrap();
    api.delete_database(&db).await.unwrap();
    let (u, d) = (user.clone(), db.clone());
    c.wait_until("login and database gone", T, async move |_| {
        Ok(mysql(&u, pw, &d, "SELECT 1").is_err())
    })
    .await
    .unwrap();
    c.kill_agent("d1").unwrap();
    tokio::time::sleep(Duration::from_secs(2)).await;
    let web = engine_addr(&c, "w1", "http").await.unwrap();
    let out = std::process::Command::new("curl")
        .args([
            "-s",
            "-o",
            "/dev/null",
            "-w",
            "%{http_code}",
            "-H",
            "Host: shop.example",
        ])
        .arg(format!("http://{web}/"))
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "404",
        "web answers (no content yet)"
    );
    let ns1 = dns_endpoint(&c, "ns1").await.unwrap();
    assert_eq!(
        dig_a(&ns1, "shop.example"),
        vec![c.agent("w1").unwrap().bind.to_string()]
    );
    let mx = engine_addr(&c, "mx1", "smtp").await.unwrap();
    let mut conn = std::net::TcpStream::connect(&mx).unwrap();
    let mut banner = [0u8; 3];
    std::io::Read::read_exact(&mut conn, &mut banner).unwrap();
    assert_eq!(&banner, b"220", "mail answers");
}
