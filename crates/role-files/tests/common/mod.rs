//! Shared test helpers: a throwaway PKI (rcgen), argon2id hashes, an FTP server and the
//! site-file hub's HTTPS routes on this test's own 127.x.y.z addresses, and real clients (lftp, curl)
//! run with a timeout and killed on drop.

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use argon2::password_hash::{PasswordHasher, SaltString};
use proto::agent_v1::{FilesConfig, FtpAccountConfig, TlsMaterial};
use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose,
};
use role_files::auth::Accounts;
use role_files::ftp::{run_ftp, FtpShared};
use role_files::plan::{render, FilesPlan};
use role_files::tls::{certified_key, sync_port_config, SwapCert};
use tokio::net::TcpListener;
use tokio::sync::watch;

static BLOCK_COUNTER: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);

/// This test's own loopback block `127.A.B.x` (from the pid and a counter, like testkit's
/// `AddrBlock`, which is not used here to keep these tests free of the controller).
#[derive(Debug, Clone, Copy)]
pub struct AddrBlock {
    a: u8,
    b: u8,
}

impl AddrBlock {
    pub fn next() -> Self {
        const SPAN: u32 = 253 * 256;
        let n = BLOCK_COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let v = (std::process::id().wrapping_mul(64) % SPAN + n % 64) % SPAN;
        Self {
            a: u8::try_from(2 + v / 256).unwrap_or(254),
            b: u8::try_from(v % 256).unwrap_or(0),
        }
    }

    /// Host `host` of the block; `HOSTPLANE_TEST_NET=127.0.14` puts every block on that
    /// one /24 instead (for machines where a builder owns only one range; run the tests
    /// one at a time then).
    pub fn addr(&self, host: u8) -> IpAddr {
        if let Some([a, b, c]) = std::env::var("HOSTPLANE_TEST_NET").ok().and_then(|n| {
            let v: Vec<u8> = n.split('.').filter_map(|p| p.parse().ok()).collect();
            <[u8; 3]>::try_from(v).ok()
        }) {
            return IpAddr::V4(std::net::Ipv4Addr::new(a, b, c, host));
        }
        IpAddr::V4(std::net::Ipv4Addr::new(127, self.a, self.b, host))
    }
}

/// A test CA that signs server and client certificates.
pub struct Pki {
    pub ca_pem: String,
    issuer: Issuer<'static, KeyPair>,
}

impl Pki {
    pub fn new(name: &str) -> Result<Self> {
        let key = KeyPair::generate()?;
        let mut params = CertificateParams::new(Vec::<String>::new())?;
        let mut dn = DistinguishedName::new();
        dn.push(DnType::CommonName, name);
        params.distinguished_name = dn;
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let cert = params.self_signed(&key)?;
        Ok(Self {
            ca_pem: cert.pem(),
            issuer: Issuer::new(params, key),
        })
    }

    fn sign(
        &self,
        cn: &str,
        sans: Vec<String>,
        eku: ExtendedKeyUsagePurpose,
    ) -> Result<TlsMaterial> {
        let key = KeyPair::generate()?;
        let mut params = CertificateParams::new(sans)?;
        let mut dn = DistinguishedName::new();
        dn.push(DnType::CommonName, cn);
        params.distinguished_name = dn;
        params.extended_key_usages = vec![eku];
        let cert = params.signed_by(&key, &self.issuer)?;
        Ok(TlsMaterial {
            cert_pem: cert.pem().into(),
            key_pem: key.serialize_pem().into(),
        })
    }

    /// A server certificate for `ip`.
    pub fn server(&self, ip: IpAddr) -> Result<TlsMaterial> {
        self.sign(
            "files-1",
            vec![ip.to_string()],
            ExtendedKeyUsagePurpose::ServerAuth,
        )
    }

    /// A client certificate with common name `cn`.
    pub fn client(&self, cn: &str) -> Result<TlsMaterial> {
        self.sign(cn, vec![], ExtendedKeyUsagePurpose::ClientAuth)
    }
}

/// argon2id PHC string of `pw` (the controller's format).
pub fn hash(pw: &str) -> String {
    let salt = SaltString::from_b64("c2FsdHNhbHRzYWx0c2FsdA").expect("salt");
    argon2::Argon2::default()
        .hash_password(pw.as_bytes(), &salt)
        .expect("hash")
        .to_string()
}

pub fn account(user: &str, pw: &str, domain: &str, home: &str, quota_mb: u64) -> FtpAccountConfig {
    FtpAccountConfig {
        username: user.into(),
        domain: domain.into(),
        password_hash: hash(pw),
        home: home.into(),
        quota_mb,
    }
}

/// A files server (FTP and the hub's routes on a sync port) on its own address.
pub struct FilesServer {
    pub ip: IpAddr,
    pub ftp: SocketAddr,
    /// The sync port (the hub's routes, mutual TLS).
    pub sync: SocketAddr,
    pub dir: tempfile::TempDir,
    pub pki: Pki,
    pub accounts: Accounts,
    pub cert: Arc<SwapCert>,
    /// The site-file hub whose trees are the sites.
    pub hub: Arc<sitesync::hub::Hub>,
    /// The FTP authenticator (login throttle counts).
    pub auth: Arc<role_files::auth::HashAuthenticator>,
    stop: watch::Sender<bool>,
}

impl Drop for FilesServer {
    fn drop(&mut self) {
        let _ = self.stop.send(true);
    }
}

async fn stopped(mut rx: watch::Receiver<bool>) {
    let _ = rx.wait_for(|s| *s).await;
}

/// The config used by most tests: sites a.example and b.example; alice (a, 1 MiB quota),
/// bob (b), carol (a, home "pub").
pub fn default_config() -> FilesConfig {
    FilesConfig {
        sites: vec!["a.example".into(), "b.example".into()],
        ftp_accounts: vec![
            account("alice", "alice-pw", "a.example", "", 1),
            account("bob", "bob-pw", "b.example", "", 0),
            account("carol", "carol-pw", "a.example", "pub", 0),
        ],
        tls: None,
        sync_clients: vec![("web-1".into(), vec!["a.example".into()])],
        ..Default::default()
    }
}

impl FilesServer {
    /// Start FTP (TLS required or not) and the sync port on `ip` with `cfg` applied.
    pub async fn start(ip: IpAddr, tls_required: bool, mut cfg: FilesConfig) -> Result<Self> {
        let pki = Pki::new("test CA")?;
        cfg.tls = Some(pki.server(ip)?);
        let dir = tempfile::tempdir()?;
        let hub = role_files::sitehub::open_hub(dir.path(), "files-1")?;
        let accounts = Accounts::default();
        let cert = Arc::new(SwapCert::default());
        let (stop, rx) = watch::channel(false);
        let l = TcpListener::bind(SocketAddr::new(ip, 0)).await?;
        let ftp = l.local_addr()?;
        let shared = FtpShared::new(
            hub.clone(),
            accounts.clone(),
            cert.clone(),
            30000..=30099,
            tls_required,
        );
        let auth = shared.authenticator.clone();
        tokio::spawn(run_ftp(l, shared, stopped(rx.clone())));
        let sl = TcpListener::bind(SocketAddr::new(ip, 0)).await?;
        let sync = sl.local_addr()?;
        let tls = sync_port_config(cert.clone(), pki.ca_pem.as_bytes())?;
        tokio::spawn(sitesync::transport::server::run_hub_server(
            sl,
            tls,
            hub.clone(),
            stopped(rx),
        ));
        let s = Self {
            ip,
            ftp,
            sync,
            dir,
            pki,
            accounts,
            cert,
            hub,
            auth,
            stop,
        };
        s.apply(&cfg)?;
        Ok(s)
    }

    /// Apply `cfg` the way the engine does (dirs, accounts, sites, certificate);
    /// every object of it must be valid.
    pub fn apply(&self, cfg: &FilesConfig) -> Result<FilesPlan> {
        let (plan, rejected) = render(cfg, &FilesPlan::default());
        anyhow::ensure!(rejected.is_empty(), "not applied: {rejected:?}");
        for d in &plan.sites {
            self.hub.manifest(d)?;
        }
        for a in plan.accounts.values() {
            let rest = a.home.strip_prefix(&a.domain)?;
            std::fs::create_dir_all(self.site(&a.domain).join(rest))?;
        }
        if let Some(t) = &plan.tls {
            self.cert.set(Some(certified_key(&t.cert_pem, &t.key_pem)?));
        }
        self.accounts.set(plan.accounts.clone());
        self.hub.set_grants(plan.sync_clients.clone());
        Ok(plan)
    }

    pub fn sites_root(&self) -> PathBuf {
        self.hub.dir().to_path_buf()
    }

    /// The site's tree (the hub's).
    pub fn site(&self, domain: &str) -> PathBuf {
        self.hub.tree_path(domain)
    }

    pub fn ca_file(&self) -> Result<PathBuf> {
        let p = self.dir.path().join("ca.pem");
        if !p.exists() {
            std::fs::write(&p, &self.pki.ca_pem)?;
        }
        Ok(p)
    }

    pub fn url(&self) -> String {
        format!("ftp://{}:{}", self.ftp.ip(), self.ftp.port())
    }
}

/// Output of a client run.
#[derive(Debug)]
pub struct Run {
    pub ok: bool,
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

/// Run `prog args` with a 60 s limit (killed on drop or timeout).
pub async fn run(prog: &str, args: &[&str]) -> Result<Run> {
    let mut cmd = tokio::process::Command::new(prog);
    cmd.args(args)
        .kill_on_drop(true)
        .stdin(std::process::Stdio::null());
    let child = cmd.output();
    let out = tokio::time::timeout(Duration::from_secs(60), child)
        .await
        .with_context(|| format!("{prog} timed out"))?
        .with_context(|| format!("{prog} is missing: apt-get install {prog}"))?;
    Ok(Run {
        ok: out.status.success(),
        code: out.status.code(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    })
}

/// Run lftp with `script` against the server as `user`/`pw`, TLS on or off.
pub async fn lftp(srv: &FilesServer, user: &str, pw: &str, tls: bool, script: &str) -> Result<Run> {
    let ca = srv.ca_file()?;
    let settings = if tls {
        format!(
            "set ftp:ssl-force true; set ftp:ssl-protect-data true; set ftp:ssl-protect-list true; \
             set ssl:verify-certificate yes; set ssl:ca-file {};",
            ca.display()
        )
    } else {
        "set ftp:ssl-allow false;".to_string()
    };
    let full = format!(
        "set net:max-retries 1; set net:timeout 15; set net:reconnect-interval-base 1; \
         set cmd:fail-exit true; set ftp:passive-mode true; {settings} \
         open -u {user},{pw} {}; {script}",
        srv.url()
    );
    run("lftp", &["-c", &full]).await
}

/// Run curl against the server's FTP as `user`/`pw` with extra `args`.
pub async fn curl(
    srv: &FilesServer,
    user: &str,
    pw: &str,
    tls: bool,
    args: &[&str],
) -> Result<Run> {
    let ca = srv.ca_file()?;
    let userpw = format!("{user}:{pw}");
    let ca_s = ca.display().to_string();
    let mut a: Vec<&str> = vec!["-sS", "--max-time", "30", "-u", &userpw];
    if tls {
        a.extend(["--ssl-reqd", "--cacert", &ca_s]);
    }
    a.extend(args);
    run("curl", &a).await
}

/// Poll `check` every 20 ms until it holds or `limit` passes.
pub async fn eventually<F: FnMut() -> bool>(limit: Duration, mut check: F) -> bool {
    let start = std::time::Instant::now();
    while start.elapsed() < limit {
        if check() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    check()
}

pub fn write(path: &Path, bytes: &[u8]) -> Result<()> {
    if let Some(p) = path.parent() {
        std::fs::create_dir_all(p)?;
    }
    std::fs::write(path, bytes)?;
    Ok(())
}

/// Names in `dir`, sorted.
pub fn names(dir: &Path) -> Result<Vec<String>> {
    let mut v: Vec<String> = std::fs::read_dir(dir)?
        .map(|e| e.map(|e| e.file_name().to_string_lossy().into_owned()))
        .collect::<Result<_, _>>()?;
    v.sort();
    Ok(v)
}

pub fn ensure(cond: bool, what: impl FnOnce() -> String) -> Result<()> {
    if !cond {
        bail!("{}", what());
    }
    Ok(())
}

pub fn options() -> BTreeMap<String, String> {
    BTreeMap::new()
}
