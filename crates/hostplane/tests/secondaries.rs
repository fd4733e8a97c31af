//! External secondaries as an operator runs them: a controller and a DNS primary
//! as real processes (testkit), then a BIND 9 and a Knot secondary configured from
//! `hostplane cluster tsig show` that follow the cluster's catalog zone (RFC 9432):
//! they pick up a zone added after they started and drop a removed one. The catalog
//! is never transferred unsigned; after `cluster tsig rotate` the previous key
//! works during its grace period and is refused after it.

#![allow(clippy::unwrap_used)] // test helpers outside #[test] fns may panic

mod common;

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use common::{hp, run, BIN};
use proto::v1::{CreateDomain, UpdateCluster};
use serde_json::Value;
use testkit::{Options, TestCluster};

/// Generous bound for a secondary to notice a change (BIND applies catalog
/// changes at most every 5 s).
const T: Duration = Duration::from_secs(60);

/// A daemon killed on drop, also when an assertion fails; its log is printed then.
struct Daemon {
    name: &'static str,
    child: Child,
    log: std::path::PathBuf,
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if std::thread::panicking() {
            let log = std::fs::read_to_string(&self.log).unwrap_or_default();
            let tail: Vec<&str> = log.lines().rev().take(40).collect();
            eprintln!("--- {} log (last lines) ---", self.name);
            for l in tail.into_iter().rev() {
                eprintln!("{l}");
            }
        }
    }
}

fn spawn(name: &'static str, cmd: &mut Command, dir: &Path) -> Daemon {
    let log = dir.join(format!("{name}.log"));
    let child = cmd
        .stdout(Stdio::null())
        .stderr(Stdio::from(std::fs::File::create(&log).unwrap()))
        .spawn()
        .unwrap_or_else(|e| panic!("{name} must be installed (scripts/test installs it): {e}"));
    Daemon { name, child, log }
}

/// `dig` output (stdout) with `args`.
fn dig(args: &[&str]) -> String {
    let out = Command::new("dig")
        .args(["+time=2", "+tries=1", "+norecurse"])
        .args(args)
        .output()
        .expect("`dig` not found: install bind9-dnsutils");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The SOA of `zone` as a server answers it (`+short`), empty when it has no such
/// zone.
fn soa(ip: &str, port: u16, zone: &str) -> String {
    dig(&[
        &format!("@{ip}"),
        "-p",
        &port.to_string(),
        zone,
        "SOA",
        "+short",
    ])
    .trim()
    .to_owned()
}

/// The DNS endpoint the primary's engine reports (`serving N zones ... on IP:PORT`).
async fn dns_endpoint(c: &TestCluster, name: &str) -> Option<std::net::SocketAddr> {
    let view = c.server(name).await.ok()?;
    let detail = &view.engines.iter().find(|e| e.name == "dns")?.detail;
    detail
        .split_whitespace()
        .skip_while(|w| *w != "on")
        .nth(1)?
        .trim_end_matches(';')
        .parse()
        .ok()
}

async fn wait(c: &TestCluster, what: &str, check: impl Fn() -> bool) {
    c.wait_until(what, T, async |_| Ok(check())).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bind_and_knot_follow_the_catalog_zone_and_tsig_rotation() {
    let mut c = TestCluster::start(BIN, Options::default()).await.unwrap();
    c.add_cluster("dns-1", "dns", true).await.unwrap();
    // A domain needs a cluster of every role; only DNS has a server here.
    for (name, role) in [("web-1", "web"), ("mail-1", "mail"), ("files-1", "files")] {
        c.add_cluster(name, role, true).await.unwrap();
    }
    c.add_customer("acme").await.unwrap();
    c.add_agent("ns1", "dns-1", "GB").await.unwrap();
    c.wait_until("the dns engine reports its address", T, async |c| {
        Ok(dns_endpoint(c, "ns1").await.is_some())
    })
    .await
    .unwrap();
    let primary = dns_endpoint(&c, "ns1").await.unwrap();
    let domain = |name: &str| CreateDomain {
        name: name.into(),
        customer: Some("acme".into()),
        clusters: None,
    };
    c.admin()
        .create_domain(&domain("first.test"))
        .await
        .unwrap();

    // The secondaries' addresses: BIND only listens on interface addresses, so it
    // takes 127.0.0.1 with a port of its own; Knot an address of this test's block.
    let bind_port = 39600 + u16::try_from(std::process::id() % 300).unwrap();
    let knot_ip = c.block().addr(200).to_string();
    let knot_port = 10054;
    c.admin()
        .update_cluster(
            "dns-1",
            &UpdateCluster {
                external_secondaries: Some(vec![
                    format!("127.0.0.1:{bind_port}"),
                    format!("{knot_ip}:{knot_port}"),
                ]),
                ..UpdateCluster::default()
            },
        )
        .await
        .unwrap();

    // The operator's view, through the CLI.
    let dir = tempfile::tempdir().unwrap();
    let ca = dir.path().join("ca.pem");
    std::fs::write(&ca, c.ca_pem()).unwrap();
    let cli = |args: &[&str]| {
        let mut cmd = hp(&dir.path().join("cli.toml"));
        cmd.env("HOSTPLANE_URL", c.url())
            .env("HOSTPLANE_TOKEN", c.admin_token())
            .env("HOSTPLANE_CA", &ca);
        let r = run(cmd, args);
        assert_eq!(r.code, 0, "hostplane {args:?}: {}{}", r.stdout, r.stderr);
        r.stdout
    };
    let show: Value =
        serde_json::from_str(&cli(&["cluster", "tsig", "show", "dns-1", "--json"])).unwrap();
    let field = |v: &Value, k: &str| v[k].as_str().unwrap_or_default().to_owned();
    assert_eq!(field(&show, "name"), "xfr.dns-1.hostplane.");
    assert_eq!(field(&show, "algorithm"), "hmac-sha256");
    let old_secret = field(&show, "secret");
    assert_eq!(old_secret.len(), 44, "256-bit base64 secret");
    let catalog = field(&show, "catalog_zone");
    assert_eq!(catalog, "catalog.dns-1.hostplane.invalid");
    assert_eq!(
        show["primaries"][0].as_str(),
        Some(primary.to_string().as_str())
    );
    let human = cli(&["cluster", "tsig", "show", "dns-1"]);
    for part in ["bind_options", "bind_config", "knot_config"] {
        assert!(human.contains(&field(&show, part)), "{part} in:\n{human}");
    }
    assert!(human.contains(&old_secret));

    // BIND 9 secondary: its own options, plus what `tsig show` printed.
    let bdir = dir.path().join("bind");
    std::fs::create_dir_all(&bdir).unwrap();
    let d = bdir.display();
    let named = format!(
        "options {{\n  directory \"{d}\"; pid-file \"{d}/named.pid\"; session-keyfile \"{d}/s.key\";\n  \
         listen-on port {bind_port} {{ 127.0.0.1; }}; listen-on-v6 {{ none; }};\n  \
         recursion no; dnssec-validation no; notify no;\n{}}};\ncontrols {{ }};\n{}",
        field(&show, "bind_options"),
        field(&show, "bind_config"),
    );
    std::fs::write(bdir.join("named.conf"), &named).unwrap();
    let _named = spawn(
        "named",
        Command::new("named")
            .args(["-g", "-n", "1", "-c"])
            .arg(bdir.join("named.conf")),
        &bdir,
    );

    // Knot secondary: server and storage, plus what `tsig show` printed (the
    // member template gets a storage, as its comment asks).
    let kdir = dir.path().join("knot");
    std::fs::create_dir_all(&kdir).unwrap();
    let d = kdir.display();
    let knot = format!(
        "server:\n    rundir: \"{d}\"\n    listen: {knot_ip}@{knot_port}\n    background-workers: 1\n\
         log:\n  - target: stderr\n    any: info\ndatabase:\n    storage: \"{d}\"\n\
         template:\n  - id: default\n    storage: \"{d}\"\n{}",
        field(&show, "knot_config").replace(
            "    # storage, zonefile-sync ...: as for your other secondary zones",
            &format!("    storage: \"{d}\""),
        ),
    );
    std::fs::write(kdir.join("knot.conf"), &knot).unwrap();
    let _knotd = spawn(
        "knotd",
        Command::new("knotd").arg("-c").arg(kdir.join("knot.conf")),
        &kdir,
    );

    // The zone that existed before they started comes through the catalog.
    wait(&c, "BIND serves first.test", || {
        !soa("127.0.0.1", bind_port, "first.test").is_empty()
    })
    .await;
    wait(&c, "Knot serves first.test", || {
        !soa(&knot_ip, knot_port, "first.test").is_empty()
    })
    .await;

    // A zone added afterwards: NOTIFY of the catalog, and both add it.
    c.admin()
        .create_domain(&domain("second.test"))
        .await
        .unwrap();
    wait(&c, "BIND picks up second.test", || {
        !soa("127.0.0.1", bind_port, "second.test").is_empty()
    })
    .await;
    wait(&c, "Knot picks up second.test", || {
        !soa(&knot_ip, knot_port, "second.test").is_empty()
    })
    .await;
    assert_eq!(
        soa("127.0.0.1", bind_port, "second.test"),
        soa(&primary.ip().to_string(), primary.port(), "second.test")
    );

    // A removed zone: both drop it.
    c.admin().delete_domain("first.test").await.unwrap();
    wait(&c, "BIND drops first.test", || {
        soa("127.0.0.1", bind_port, "first.test").is_empty()
    })
    .await;
    wait(&c, "Knot drops first.test", || {
        soa(&knot_ip, knot_port, "first.test").is_empty()
    })
    .await;
    assert!(!soa(&knot_ip, knot_port, "second.test").is_empty());

    // The catalog from an allowed address: refused unsigned, given signed.
    let ns = format!("@{}", primary.ip());
    let port = primary.port().to_string();
    let axfr = |secret: Option<&str>| {
        let key = secret.map(|s| format!("hmac-sha256:xfr.dns-1.hostplane.:{s}"));
        let mut args = vec![
            "-b",
            "127.0.0.1",
            ns.as_str(),
            "-p",
            &port,
            &catalog,
            "AXFR",
        ];
        if let Some(k) = &key {
            args.extend(["-y", k.as_str()]);
        }
        dig(&args)
    };
    let transferred = |out: &str| {
        let out = out.replace('\t', " ");
        out.contains("PTR second.test.") && out.contains("TXT \"2\"")
    };
    let unsigned = axfr(None);
    assert!(!transferred(&unsigned), "unsigned catalog AXFR: {unsigned}");
    assert!(unsigned.contains("Transfer failed"), "{unsigned}");
    let signed = axfr(Some(&old_secret));
    assert!(transferred(&signed), "signed catalog AXFR: {signed}");

    // Rotate with a grace period: the new key works, the old one until the end
    // of the grace period only.
    let rotated: Value = serde_json::from_str(&cli(&[
        "cluster", "tsig", "rotate", "dns-1", "--grace", "20s", "--json",
    ]))
    .unwrap();
    let new_secret = field(&rotated, "secret");
    assert_ne!(new_secret, old_secret);
    assert_eq!(field(&rotated, "name"), "xfr.dns-1.hostplane.");
    let until = time::OffsetDateTime::parse(
        &field(&rotated, "previous_valid_until"),
        &time::format_description::well_known::Rfc3339,
    )
    .unwrap();
    wait(&c, "the primary takes the new key", || {
        transferred(&axfr(Some(&new_secret)))
    })
    .await;
    let during = axfr(Some(&old_secret));
    assert!(
        time::OffsetDateTime::now_utc() >= until || transferred(&during),
        "old key during the grace period: {during}"
    );
    let left = until - time::OffsetDateTime::now_utc();
    if left.is_positive() {
        tokio::time::sleep(left.unsigned_abs() + Duration::from_secs(1)).await;
    }
    let after = axfr(Some(&old_secret));
    assert!(
        !transferred(&after),
        "old key after the grace period: {after}"
    );
    assert!(transferred(&axfr(Some(&new_secret))));
    // `show` now gives the new key.
    let again: Value =
        serde_json::from_str(&cli(&["cluster", "tsig", "show", "dns-1", "--json"])).unwrap();
    assert_eq!(field(&again, "secret"), new_secret);
}

/// Only admins see or rotate a cluster's key; a web cluster has none.
#[tokio::test]
async fn tsig_keys_are_for_admins_and_dns_clusters_only() {
    let c = TestCluster::start(BIN, Options::default()).await.unwrap();
    c.add_cluster("dns-1", "dns", true).await.unwrap();
    c.add_cluster("web-1", "web", true).await.unwrap();
    c.add_customer("acme").await.unwrap();
    let token = c.api_token_for("acme").await.unwrap();
    let http = c.http();
    let get = |path: &str, token: &str| {
        http.get(format!("{}{path}", c.url()))
            .bearer_auth(token.to_owned())
            .send()
    };
    let r = get("/v1/clusters/dns-1/tsig", &token).await.unwrap();
    assert_eq!(r.status(), 403);
    let body = r.text().await.unwrap();
    assert!(!body.contains("secret\""), "{body}");
    let r = http
        .post(format!("{}/v1/clusters/dns-1/tsig/rotate", c.url()))
        .bearer_auth(&token)
        .json(&serde_json::json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    let admin = c.admin_token().to_owned();
    let r = get("/v1/clusters/dns-1/tsig", &admin).await.unwrap();
    assert_eq!(r.status(), 200);
    let r = get("/v1/clusters/web-1/tsig", &admin).await.unwrap();
    assert_eq!(r.status(), 422);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["field"], "name", "{v}");
    let r = get("/v1/clusters/nope/tsig", &admin).await.unwrap();
    assert_eq!(r.status(), 404);
    let r = http
        .post(format!("{}/v1/clusters/dns-1/tsig/rotate", c.url()))
        .bearer_auth(&admin)
        .json(&serde_json::json!({ "grace_seconds": 99_999_999 }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 422);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["field"], "grace_seconds", "{v}");
}
