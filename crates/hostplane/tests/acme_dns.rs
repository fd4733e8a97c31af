//! ACME DNS-01 end to end (issue 17) against Debian's Pebble, validating through
//! our own DNS servers: a wildcard alias validated through the TXT record our DNS
//! servers (primary and secondary) publish, and a name whose CAA forbids the CA
//! left out. (HTTP-01, renewal and CA failures: `acme.rs`.)
//! TODO(dedup): move onto `testkit::acme::AcmeCluster` like `acme.rs`.

#![allow(clippy::unwrap_used)]

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use proto::v1::{CreateDomain, CreateSite};
use testkit::{Options, TestCluster};

const BIN: &str = env!("CARGO_BIN_EXE_hostplane");
const T: Duration = Duration::from_secs(30);
const PEBBLE: &str = "/usr/bin/pebble";

/// Pebble as a child process, killed (and reaped) on drop.
struct Pebble {
    child: Child,
    dir: tempfile::TempDir,
    api: SocketAddr,
    mgmt: SocketAddr,
}

impl Drop for Pebble {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Pebble {
    /// The CA of Pebble's own HTTPS certificate.
    fn tls_ca(&self) -> PathBuf {
        self.dir.path().join("pebble-tls-ca.pem")
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("pebble.log")).unwrap_or_default()
    }
}

/// A free TCP port on `ip` (bound then released).
fn free_port(ip: &str) -> u16 {
    std::net::TcpListener::bind((ip, 0))
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Start Pebble on 127.0.0.1 with its own HTTPS certificate (made here), validating
/// HTTP-01 on `http_port` and resolving names through `dns`.
async fn start_pebble(http_port: u16, dns: SocketAddr) -> Pebble {
    assert!(
        Path::new(PEBBLE).exists(),
        "{PEBBLE} is missing: apt-get install pebble (scripts/test installs it)"
    );
    let dir = tempfile::tempdir().unwrap();
    // Pebble's own HTTPS: a leaf for 127.0.0.1 signed by a CA of this test (the
    // controller trusts the CA through `[acme] ca_file`).
    let ca_key = rcgen::KeyPair::generate().unwrap();
    let mut ca_params = rcgen::CertificateParams::default();
    ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "pebble test TLS CA");
    let ca = rcgen::CertifiedIssuer::self_signed(ca_params, ca_key).unwrap();
    let key = rcgen::KeyPair::generate().unwrap();
    let params =
        rcgen::CertificateParams::new(vec!["127.0.0.1".to_owned(), "localhost".to_owned()])
            .unwrap();
    let cert = params.signed_by(&key, &ca).unwrap();
    std::fs::write(dir.path().join("pebble-tls-ca.pem"), ca.as_ref().pem()).unwrap();
    std::fs::write(dir.path().join("pebble-tls.pem"), cert.pem()).unwrap();
    std::fs::write(dir.path().join("pebble-tls.key"), key.serialize_pem()).unwrap();
    let api: SocketAddr = format!("127.0.0.1:{}", free_port("127.0.0.1"))
        .parse()
        .unwrap();
    let mgmt: SocketAddr = format!("127.0.0.1:{}", free_port("127.0.0.1"))
        .parse()
        .unwrap();
    let config = serde_json::json!({
        "pebble": {
            "listenAddress": api.to_string(),
            "managementListenAddress": mgmt.to_string(),
            "certificate": dir.path().join("pebble-tls.pem"),
            "privateKey": dir.path().join("pebble-tls.key"),
            "httpPort": http_port,
            "tlsPort": free_port("127.0.0.1"),
            "ocspResponderURL": "",
            "externalAccountBindingRequired": false
        }
    });
    let cfg = dir.path().join("pebble.json");
    std::fs::write(&cfg, config.to_string()).unwrap();
    let log = std::fs::File::create(dir.path().join("pebble.log")).unwrap();
    let child = Command::new(PEBBLE)
        .arg("-config")
        .arg(&cfg)
        .arg("-dnsserver")
        .arg(dns.to_string())
        .env("PEBBLE_VA_NOSLEEP", "1")
        .env("PEBBLE_WFE_NONCEREJECT", "0")
        .stdin(Stdio::null())
        .stdout(log.try_clone().unwrap())
        .stderr(log)
        .spawn()
        .unwrap();
    let pebble = Pebble {
        child,
        dir,
        api,
        mgmt,
    };
    for _ in 0..200 {
        if tokio::net::TcpStream::connect(api).await.is_ok() {
            return pebble;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("pebble did not listen on {api}:\n{}", pebble.log());
}

/// `ip:port` after the word `word` in a server's first engine's health detail
/// (`on http 127.0.0.11:80`, `serving N zones … on IP:PORT`).
async fn engine_addr(c: &TestCluster, server: &str, word: &str) -> Option<SocketAddr> {
    let view = c.server(server).await.ok()?;
    let detail = &view.engines.first()?.detail;
    let mut words = detail.split_whitespace();
    words.find(|w| *w == word)?;
    let next = words.next()?;
    let next = if next == "on" { words.next()? } else { next };
    next.trim_end_matches([';', ',']).parse().ok()
}

/// `curl` to `https://<host>/` at `addr`, trusting only `root`; (exit code, stderr).
fn curl_https(addr: SocketAddr, host: &str, root: &Path) -> (i32, String) {
    let out = Command::new("curl")
        .args(["-sS", "-o", "/dev/null", "--max-time", "5", "--cacert"])
        .arg(root)
        .arg("--resolve")
        .arg(format!("{host}:{}:{}", addr.port(), addr.ip()))
        .arg(format!("https://{host}:{}/", addr.port()))
        .output()
        .expect("`curl` not found: install curl (scripts/test does)");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Restart the controller with `[acme]` pointed at `pebble`, our DNS server
/// `dns` as its resolver and `caa` as the CA's CAA identities.
async fn with_acme(c: &mut TestCluster, pebble: &Pebble, dns: SocketAddr, caa: &[&str]) {
    c.stop_controller().unwrap();
    let mut config = controller::config::ControllerConfig::load(c.config_path()).unwrap();
    config.acme = Some(controller::acme::AcmeConfig {
        directory: format!("https://{}/dir", pebble.api),
        email: Some("hostmaster@hosting.test".into()),
        ca_file: Some(pebble.tls_ca()),
        caa_identities: caa.iter().map(|s| s.to_string()).collect(),
        ..controller::acme::AcmeConfig::new(format!("https://{}/dir", pebble.api))
    });
    config.names.resolver = Some(dns);
    std::fs::write(c.config_path(), config.to_toml().unwrap()).unwrap();
    c.start_controller().await.unwrap();
}

/// Pebble's root (from its management endpoint), written to a file for curl.
async fn pebble_root(pebble: &Pebble) -> PathBuf {
    let http = testkit::reqwest::Client::builder()
        .add_root_certificate(
            testkit::reqwest::Certificate::from_pem(&std::fs::read(pebble.tls_ca()).unwrap())
                .unwrap(),
        )
        .build()
        .unwrap();
    let root = http
        .get(format!("https://{}/roots/0", pebble.mgmt))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let path = pebble.dir.path().join("pebble-root.pem");
    std::fs::write(&path, root).unwrap();
    path
}

/// The TXT data at `name` in the zone `ns` is told to serve.
fn zone_txt(c: &TestCluster, ns: &str, name: &str) -> Vec<String> {
    match c.agent_desired(ns).unwrap().map(|d| d.role) {
        Some(proto::agent_v1::RoleConfig::Dns(d)) => d
            .zones
            .iter()
            .filter_map(|z| z.zone.as_ref())
            .flat_map(|z| z.records.iter())
            .filter(|r| r.name == name && r.rtype == "TXT")
            .map(|r| r.data.clone())
            .collect(),
        _ => Vec::new(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pebble_validates_dns01_for_a_wildcard_and_caa_leaves_a_forbidden_name_out() {
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
    // A primary and a secondary: the CA is told only when both serve the TXT.
    // (ns1 joins first: the primary; a secondary lives in another country.)
    c.add_agent("ns1", "dns-1", "GB").await.unwrap();
    c.wait_converged("ns1", T).await.unwrap();
    c.add_agent("ns2", "dns-1", "FR").await.unwrap();
    c.add_agent("w1", "web-a", "GB").await.unwrap();
    for n in ["ns2", "w1"] {
        c.wait_converged(n, T).await.unwrap();
    }
    let mut addrs = Vec::new();
    for (server, word) in [("ns1", "on"), ("w1", "http"), ("w1", "https")] {
        c.wait_until("engine address", T, async |c| {
            Ok(engine_addr(c, server, word).await.is_some())
        })
        .await
        .unwrap();
        addrs.push(engine_addr(&c, server, word).await.unwrap());
    }
    let (dns, w1, w1s) = (addrs[0], addrs[1], addrs[2]);
    let pebble = start_pebble(w1.port(), dns).await;
    with_acme(&mut c, &pebble, dns, &["pebble.test"]).await;

    c.admin()
        .create_domain(&CreateDomain {
            name: "wild.test".into(),
            customer: Some("acme".into()),
            clusters: None,
        })
        .await
        .unwrap();
    // CAA: the apex allows this CA; `nope` has its own RRset (the closest one
    // counts) naming another CA only.
    for (name, value) in [("@", "pebble.test"), ("nope", "other-ca.example")] {
        c.admin()
            .create_dns_record(&proto::v1::CreateDnsRecord {
                domain: "wild.test".into(),
                name: name.into(),
                ttl: None,
                data: serde_json::json!({"type": "CAA", "flags": 0, "tag": "issue", "value": value}),
            })
            .await
            .unwrap();
    }
    c.admin()
        .create_site(&CreateSite {
            domain: "wild.test".into(),
            aliases: Some(vec!["*.wild.test".into(), "nope.wild.test".into()]),
            php: None,
            mode: Some("all".into()),
            https_redirect: Some(false),
        })
        .await
        .unwrap();

    let api = c.admin().clone();
    let issued = c
        .wait_until(
            "the wildcard certificate is issued",
            Duration::from_secs(120),
            async |_| {
                let s = api.get_site_acme("wild.test").await?;
                anyhow::ensure!(s.status != "failed", "ACME failed: {s:?}");
                Ok(s.status == "valid" && s.serving == "acme")
            },
        )
        .await;
    let status = api.get_site_acme("wild.test").await.unwrap();
    assert!(
        issued.is_ok(),
        "{issued:?}\nstatus: {status:?}\npebble:\n{}",
        pebble.log()
    );
    let mut names = status.names.clone();
    names.sort();
    assert_eq!(names, ["*.wild.test", "wild.test"]);
    assert_eq!(status.challenge, "auto");
    let mut validated = status.validated.clone();
    validated.sort();
    assert_eq!(
        validated,
        ["*.wild.test: dns-01", "wild.test: dns-01"],
        "{status:?}"
    );
    assert_eq!(status.left_out.len(), 1, "{status:?}");
    assert_eq!(status.left_out[0].name, "nope.wild.test");
    assert!(
        status.left_out[0].reason.contains("CAA")
            && status.left_out[0].reason.contains("other-ca.example"),
        "{status:?}"
    );

    // Any name one label below is served with the wildcard certificate (the
    // zone's `*` record and role-web's wildcard alias), trusted through Pebble.
    let root = pebble_root(&pebble).await;
    for host in ["wild.test", "anything.wild.test"] {
        c.wait_until("the wildcard chain is served", T, async |_| {
            Ok(curl_https(w1s, host, &root).0 == 0)
        })
        .await
        .unwrap_or_else(|e| panic!("{host}: {e} {:?}", curl_https(w1s, host, &root)));
    }
    // The challenge records are gone from both DNS servers' zones.
    for ns in ["ns1", "ns2"] {
        c.wait_until("challenge records removed", T, async |c| {
            Ok(zone_txt(c, ns, "_acme-challenge.wild.test").is_empty())
        })
        .await
        .unwrap();
    }
    drop(pebble);
}
