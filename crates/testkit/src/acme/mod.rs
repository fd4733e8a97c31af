//! ACME test support (issue 17): Debian's Pebble as a child process ([`Pebble`]),
//! a fault-injecting HTTPS proxy in front of it ([`proxy::Proxy`]: rate limits
//! with `Retry-After`, broken challenge tokens, renewal information the 2.4 Pebble
//! lacks), and the cluster the ACME tests share ([`AcmeCluster`]: a controller, a
//! DNS server Pebble resolves through, two web servers on one HTTP port, and
//! `[acme]` pointed at Pebble or the proxy).

pub mod proxy;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use anyhow::{bail, Context, Result};

use crate::{Options, TestCluster};

/// Debian's Pebble (`apt-get install pebble`; `scripts/test` installs it).
pub const PEBBLE: &str = "/usr/bin/pebble";
const T: Duration = Duration::from_secs(30);

/// A test CA and a leaf for 127.0.0.1 signed by it (PEMs: CA, leaf, leaf key):
/// Pebble's own HTTPS and the proxy's, trusted through `[acme] ca_file`.
pub struct TlsCa {
    ca: rcgen::CertifiedIssuer<'static, rcgen::KeyPair>,
}

impl TlsCa {
    /// A new CA.
    pub fn new() -> Result<Self> {
        let ca_key = rcgen::KeyPair::generate()?;
        let mut p = rcgen::CertificateParams::default();
        p.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        p.distinguished_name
            .push(rcgen::DnType::CommonName, "pebble test TLS CA");
        Ok(TlsCa {
            ca: rcgen::CertifiedIssuer::self_signed(p, ca_key)?,
        })
    }

    /// The CA certificate (PEM).
    pub fn pem(&self) -> String {
        self.ca.as_ref().pem()
    }

    /// A leaf for `127.0.0.1` and `localhost`: (certificate PEM, key PEM).
    pub fn leaf(&self) -> Result<(String, String)> {
        let key = rcgen::KeyPair::generate()?;
        let params =
            rcgen::CertificateParams::new(vec!["127.0.0.1".to_owned(), "localhost".to_owned()])?;
        let cert = params.signed_by(&key, &self.ca)?;
        Ok((cert.pem(), key.serialize_pem()))
    }
}

/// Pebble as a child process, killed (and reaped) on drop.
pub struct Pebble {
    child: Child,
    /// Its files (config, log, TLS material).
    pub dir: tempfile::TempDir,
    /// Its ACME API (`https://<api>/dir`).
    pub api: SocketAddr,
    /// Its management API (`/roots/0`).
    pub mgmt: SocketAddr,
    /// The CA of its own HTTPS certificate (and of the proxy's).
    pub tls: TlsCa,
}

impl Drop for Pebble {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A free TCP port on `ip` (bound then released).
pub fn free_port(ip: &str) -> Result<u16> {
    Ok(std::net::TcpListener::bind((ip, 0))?.local_addr()?.port())
}

/// How Pebble is started.
#[derive(Debug, Clone, Copy, Default)]
pub struct PebbleOptions {
    /// Certificate lifetime in seconds (`certificateValidityPeriod`); Pebble's
    /// default (5 years) when `None`.
    pub validity_secs: Option<u64>,
}

impl Pebble {
    /// Start Pebble on 127.0.0.1 with its own HTTPS certificate (made here),
    /// validating HTTP-01 on `http_port` and resolving names through `dns`;
    /// valid authorizations are never reused (`PEBBLE_AUTHZREUSE=0`), so every
    /// order is validated.
    pub async fn start(http_port: u16, dns: SocketAddr, opts: PebbleOptions) -> Result<Self> {
        if !Path::new(PEBBLE).exists() {
            bail!("{PEBBLE} is missing: apt-get install pebble (scripts/test installs it)");
        }
        let dir = tempfile::tempdir()?;
        let tls = TlsCa::new()?;
        let (cert, key) = tls.leaf()?;
        std::fs::write(dir.path().join("pebble-tls-ca.pem"), tls.pem())?;
        std::fs::write(dir.path().join("pebble-tls.pem"), cert)?;
        std::fs::write(dir.path().join("pebble-tls.key"), key)?;
        let api: SocketAddr = format!("127.0.0.1:{}", free_port("127.0.0.1")?).parse()?;
        let mgmt: SocketAddr = format!("127.0.0.1:{}", free_port("127.0.0.1")?).parse()?;
        let mut config = serde_json::json!({
            "pebble": {
                "listenAddress": api.to_string(),
                "managementListenAddress": mgmt.to_string(),
                "certificate": dir.path().join("pebble-tls.pem"),
                "privateKey": dir.path().join("pebble-tls.key"),
                "httpPort": http_port,
                "tlsPort": free_port("127.0.0.1")?,
                "ocspResponderURL": "",
                "externalAccountBindingRequired": false
            }
        });
        if let Some(v) = opts.validity_secs {
            config["pebble"]["certificateValidityPeriod"] = v.into();
        }
        let cfg = dir.path().join("pebble.json");
        std::fs::write(&cfg, config.to_string())?;
        let log = std::fs::File::create(dir.path().join("pebble.log"))?;
        let child = Command::new(PEBBLE)
            .arg("-config")
            .arg(&cfg)
            .arg("-dnsserver")
            .arg(dns.to_string())
            .env("PEBBLE_VA_NOSLEEP", "1")
            .env("PEBBLE_WFE_NONCEREJECT", "0")
            .env("PEBBLE_AUTHZREUSE", "0")
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()
            .context("cannot start pebble")?;
        let pebble = Pebble {
            child,
            dir,
            api,
            mgmt,
            tls,
        };
        for _ in 0..200 {
            if tokio::net::TcpStream::connect(api).await.is_ok() {
                return Ok(pebble);
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        bail!("pebble did not listen on {api}:\n{}", pebble.log())
    }

    /// The CA of Pebble's own HTTPS certificate (file).
    pub fn tls_ca(&self) -> PathBuf {
        self.dir.path().join("pebble-tls-ca.pem")
    }

    /// Pebble's log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("pebble.log")).unwrap_or_default()
    }

    /// The root Pebble issues under, from its management endpoint, written to a
    /// file (for `curl --cacert`).
    pub async fn root_file(&self) -> Result<PathBuf> {
        let http = reqwest::Client::builder()
            .add_root_certificate(reqwest::Certificate::from_pem(self.tls.pem().as_bytes())?)
            .build()?;
        let root = http
            .get(format!("https://{}/roots/0", self.mgmt))
            .send()
            .await?
            .error_for_status()?
            .text()
            .await?;
        let path = self.dir.path().join("pebble-root.pem");
        std::fs::write(&path, root)?;
        Ok(path)
    }
}

/// `ip:port` after the word `word` in a server's first engine's health detail
/// (`on http 127.0.0.11:80`, `serving N zones … on IP:PORT`).
pub async fn engine_addr(c: &TestCluster, server: &str, word: &str) -> Option<SocketAddr> {
    let view = c.server(server).await.ok()?;
    let detail = &view.engines.first()?.detail;
    let mut words = detail.split_whitespace();
    words.find(|w| *w == word)?;
    let next = words.next()?;
    let next = if next == "on" { words.next()? } else { next };
    next.trim_end_matches([';', ',']).parse().ok()
}

/// `curl` to `https://<host>/` at `addr`, trusting only `root`; (exit code, stderr).
pub fn curl_https(addr: SocketAddr, host: &str, root: &Path) -> (i32, String) {
    let out = Command::new("curl")
        .args(["-sS", "-o", "/dev/null", "--max-time", "5", "--cacert"])
        .arg(root)
        .arg("--resolve")
        .arg(format!("{host}:{}:{}", addr.port(), addr.ip()))
        .arg(format!("https://{host}:{}/", addr.port()))
        .output();
    match out {
        Ok(out) => (
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        ),
        Err(e) => (-1, format!("`curl` not found ({e}): install curl")),
    }
}

/// The cluster every ACME test starts from: customer `acme`; clusters web-a
/// (servers `w1`, `w2`, one HTTP port), dns-1 (`ns1`), mail-1, files-1; Pebble
/// resolving through `ns1`; the controller restarted with `[acme]` pointed at
/// Pebble (or the proxy) and `ns1` as its resolver.
pub struct AcmeCluster {
    /// The cluster (dropped first: its processes end before Pebble's).
    pub c: TestCluster,
    /// The fault-injecting proxy, when asked for.
    pub proxy: Option<proxy::Proxy>,
    /// Pebble.
    pub pebble: Pebble,
    /// `ns1`'s DNS address.
    pub dns: SocketAddr,
    /// `w1`'s and `w2`'s HTTP addresses.
    pub http: [SocketAddr; 2],
    /// `w1`'s and `w2`'s HTTPS addresses.
    pub https: [SocketAddr; 2],
}

impl AcmeCluster {
    /// Start it all; `proxied` puts the proxy between the controller and Pebble.
    pub async fn start(bin: &str, pebble: PebbleOptions, proxied: bool) -> Result<Self> {
        let mut c = TestCluster::start(bin, Options::default()).await?;
        for (name, role) in [
            ("web-a", "web"),
            ("dns-1", "dns"),
            ("mail-1", "mail"),
            ("files-1", "files"),
        ] {
            c.add_cluster(name, role, true).await?;
        }
        c.add_customer("acme").await?;
        c.add_agent("ns1", "dns-1", "GB").await?;
        c.add_agent("w1", "web-a", "GB").await?;
        c.add_agent("w2", "web-a", "GB").await?;
        for n in ["ns1", "w1", "w2"] {
            c.wait_converged(n, T).await?;
        }
        let mut addrs = Vec::new();
        for (server, word) in [
            ("ns1", "on"),
            ("w1", "http"),
            ("w2", "http"),
            ("w1", "https"),
            ("w2", "https"),
        ] {
            c.wait_until("engine address", T, async |c| {
                Ok(engine_addr(c, server, word).await.is_some())
            })
            .await?;
            addrs.push(
                engine_addr(&c, server, word)
                    .await
                    .context("engine address")?,
            );
        }
        let (dns, w1, w2) = (addrs[0], addrs[1], addrs[2]);
        if w1.port() != w2.port() {
            bail!("pebble validates HTTP-01 on one port: {w1} {w2}");
        }
        let pebble = Pebble::start(w1.port(), dns, pebble).await?;
        let proxy = match proxied {
            true => Some(proxy::Proxy::start(&pebble).await?),
            false => None,
        };
        let directory = match &proxy {
            Some(p) => format!("https://{}/dir", p.addr),
            None => format!("https://{}/dir", pebble.api),
        };
        c.stop_controller()?;
        let mut config = controller::config::ControllerConfig::load(c.config_path())?;
        config.acme = Some(controller::acme::AcmeConfig {
            email: Some("hostmaster@hosting.test".into()),
            ca_file: Some(pebble.tls_ca()),
            ..controller::acme::AcmeConfig::new(directory)
        });
        config.names.resolver = Some(dns);
        std::fs::write(c.config_path(), config.to_toml()?)?;
        c.start_controller().await?;
        Ok(AcmeCluster {
            c,
            proxy,
            pebble,
            dns,
            http: [w1, w2],
            https: [addrs[3], addrs[4]],
        })
    }

    /// The proxy (panics when the cluster was started without one).
    pub fn proxy(&self) -> &proxy::Proxy {
        self.proxy.as_ref().expect("started without the proxy")
    }

    /// Create domain `name` (customer `acme`).
    pub async fn add_domain(&self, name: &str) -> Result<()> {
        self.c
            .admin()
            .create_domain(&proto::v1::CreateDomain {
                name: name.into(),
                customer: Some("acme".into()),
                clusters: None,
            })
            .await?;
        Ok(())
    }

    /// Create the site of domain `name` with `aliases` (HTTPS redirect on: the
    /// challenge is answered before it).
    pub async fn add_site(&self, name: &str, aliases: &[&str]) -> Result<()> {
        self.c
            .admin()
            .create_site(&proto::v1::CreateSite {
                domain: name.into(),
                aliases: Some(aliases.iter().map(|a| (*a).to_owned()).collect()),
                php: None,
                mode: Some("all".into()),
                https_redirect: Some(true),
            })
            .await?;
        // These tests are about HTTP-01: our DNS serves the test zones, so
        // `auto` would choose DNS-01 (tested in `acme_dns.rs`).
        self.c
            .admin()
            .put_site_acme(
                name,
                &proto::v1::AcmeSettings {
                    enabled: None,
                    challenge: Some("http-01".into()),
                },
            )
            .await?;
        Ok(())
    }

    /// Wait until `domain`'s ACME status satisfies `ok` (within `timeout`); the
    /// status and Pebble's log in the error.
    pub async fn wait_acme(
        &self,
        domain: &str,
        what: &str,
        timeout: Duration,
        ok: impl Fn(&proto::v1::AcmeStatusView) -> bool,
    ) -> Result<proto::v1::AcmeStatusView> {
        let api = self.c.admin().clone();
        let r = self
            .c
            .wait_until(what, timeout, async |_| {
                Ok(ok(&api.get_site_acme(domain).await?))
            })
            .await;
        let status = api.get_site_acme(domain).await?;
        match r {
            Ok(()) => Ok(status),
            Err(e) => bail!("{e}\nstatus: {status:?}\npebble:\n{}", self.pebble.log()),
        }
    }
}
