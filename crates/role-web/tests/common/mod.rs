//! Shared test harness: a web server on 127.0.0.1 port 0 with temp content and logs,
//! a throwaway CA issuing site certificates, and a `curl` runner.

#![allow(dead_code, missing_docs, clippy::unwrap_used)]

pub mod sync_pki;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;

use proto::agent_v1::{TlsMaterial, WebConfig, WebSite};
use role_web::{render, Layout, Plan, ServerOptions};
use tokio::sync::{oneshot, watch};

/// A site description for [`WebConfig`].
pub fn site(domain: &str) -> WebSite {
    serde_json::from_value(serde_json::json!({
        "domain": domain, "mode": "all", "active": true,
    }))
    .unwrap()
}

/// A test CA that issues leaf certificates.
pub struct TestCa {
    pub pem: String,
    issuer: rcgen::Issuer<'static, rcgen::KeyPair>,
}

impl TestCa {
    pub fn new(name: &str) -> Self {
        let key = rcgen::KeyPair::generate().unwrap();
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, name);
        params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        params.key_usages = vec![
            rcgen::KeyUsagePurpose::KeyCertSign,
            rcgen::KeyUsagePurpose::DigitalSignature,
        ];
        let cert = params.self_signed(&key).unwrap();
        Self {
            pem: cert.pem(),
            issuer: rcgen::Issuer::new(params, key),
        }
    }

    pub fn issue(&self, names: &[&str]) -> TlsMaterial {
        let key = rcgen::KeyPair::generate().unwrap();
        let names: Vec<String> = names.iter().map(|s| s.to_string()).collect();
        let mut params = rcgen::CertificateParams::new(names.clone()).unwrap();
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, names[0].clone());
        let cert = params.signed_by(&key, &self.issuer).unwrap();
        TlsMaterial {
            cert_pem: cert.pem().into(),
            key_pem: key.serialize_pem().into(),
        }
    }

    /// Write the CA certificate for `curl --cacert`.
    pub fn write(&self, dir: &Path, name: &str) -> PathBuf {
        let p = dir.join(name);
        std::fs::write(&p, &self.pem).unwrap();
        p
    }
}

/// A running server; stops when dropped.
pub struct Server {
    pub tmp: tempfile::TempDir,
    pub layout: Layout,
    pub http: u16,
    pub https: u16,
    pub plan: watch::Sender<Arc<Plan>>,
    stop: Option<oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<std::io::Result<()>>>,
}

impl Server {
    pub async fn start(cfg: &WebConfig) -> Self {
        Self::start_with(cfg, |_| {}).await
    }

    pub async fn start_with(cfg: &WebConfig, tune: impl FnOnce(&mut ServerOptions)) -> Self {
        let tmp = tempfile::tempdir().unwrap();
        let layout = Layout::under(tmp.path());
        std::fs::create_dir_all(&layout.content_root).unwrap();
        let http = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let https = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let (hp, sp) = (
            http.local_addr().unwrap().port(),
            https.local_addr().unwrap().port(),
        );
        let plan = render_all(cfg, &layout, &role_web::Plan::default());
        let (tx, rx) = watch::channel(Arc::new(plan));
        let (stop, stopped) = oneshot::channel::<()>();
        let mut opts = ServerOptions {
            log_dir: Some(tmp.path().join("logs")),
            ..ServerOptions::default()
        };
        tune(&mut opts);
        let task = tokio::spawn(role_web::run_with_options(
            Some(http),
            Some(https),
            rx,
            async move {
                let _ = stopped.await;
            },
            opts,
        ));
        Self {
            tmp,
            layout,
            http: hp,
            https: sp,
            plan: tx,
            stop: Some(stop),
            task: Some(task),
        }
    }

    /// Swap in the plan for `cfg` (every site of which must be valid).
    pub fn apply(&self, cfg: &WebConfig) {
        let previous = self.plan.borrow().clone();
        self.plan
            .send_replace(Arc::new(render_all(cfg, &self.layout, &previous)));
    }

    /// Create release `rel` of `domain` with `files` and point `current` at it.
    pub fn publish(&self, domain: &str, rel: &str, files: &[(&str, &[u8])]) -> PathBuf {
        let site = self.layout.content_root.join(domain);
        let dir = site.join("releases").join(rel);
        for (name, data) in files {
            let p = dir.join(name);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(p, data).unwrap();
        }
        std::fs::create_dir_all(&dir).unwrap();
        let tmp_link = site.join(format!(".current.{rel}"));
        let _ = std::fs::remove_file(&tmp_link);
        std::os::unix::fs::symlink(format!("releases/{rel}"), &tmp_link).unwrap();
        std::fs::rename(&tmp_link, site.join("current")).unwrap();
        dir
    }

    pub fn http_url(&self, host: &str, path: &str) -> String {
        format!("http://{host}:{}{path}", self.http)
    }

    pub fn https_url(&self, host: &str, path: &str) -> String {
        format!("https://{host}:{}{path}", self.https)
    }

    /// `--resolve` arguments mapping `host` on both ports to 127.0.0.1.
    pub fn resolve(&self, host: &str) -> Vec<String> {
        vec![
            "--resolve".into(),
            format!("{host}:{}:127.0.0.1", self.http),
            "--resolve".into(),
            format!("{host}:{}:127.0.0.1", self.https),
        ]
    }

    pub async fn stop(mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        if let Some(t) = self.task.take() {
            t.await.unwrap().unwrap();
        }
    }

    /// Wait (up to 10 s) until `file` under the log dir contains `needle`.
    pub async fn log_contains(&self, file: &str, needle: &str) -> String {
        let path = self.tmp.path().join("logs").join(file);
        for _ in 0..200 {
            if let Ok(text) = std::fs::read_to_string(&path) {
                if text.contains(needle) {
                    return text;
                }
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        panic!(
            "{} never contained {needle:?}: {:?}",
            path.display(),
            std::fs::read_to_string(&path)
        );
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
    }
}

/// What curl got.
#[derive(Debug)]
pub struct Got {
    pub status: u16,
    pub version: String,
    pub headers: String,
    pub body: Vec<u8>,
    pub exit: i32,
    pub stderr: String,
}

impl Got {
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// Value of the (last) response header `name`, case-insensitive.
    pub fn header(&self, name: &str) -> Option<String> {
        self.headers
            .lines()
            .filter_map(|l| l.split_once(':'))
            .filter(|(k, _)| k.trim().eq_ignore_ascii_case(name))
            .map(|(_, v)| v.trim().to_string())
            .next_back()
    }
}

/// Run curl with `args` (in a blocking thread). Panics when curl is missing.
pub async fn curl(args: Vec<String>) -> Got {
    tokio::task::spawn_blocking(move || curl_blocking(&args))
        .await
        .unwrap()
}

fn curl_blocking(args: &[String]) -> Got {
    let dir = tempfile::tempdir().unwrap();
    let (hdr, body) = (dir.path().join("h"), dir.path().join("b"));
    let out = Command::new("curl")
        .args(["-sS", "--max-time", "30", "-D"])
        .arg(&hdr)
        .arg("-o")
        .arg(&body)
        .args(["-w", "%{http_code} %{http_version}"])
        .args(args)
        .output()
        .expect("curl must be installed (apt-get install curl)");
    let w = String::from_utf8_lossy(&out.stdout).to_string();
    let mut it = w.split_whitespace();
    Got {
        status: it.next().and_then(|s| s.parse().ok()).unwrap_or(0),
        version: it.next().unwrap_or("").to_string(),
        headers: std::fs::read_to_string(&hdr).unwrap_or_default(),
        body: std::fs::read(&body).unwrap_or_default(),
        exit: out.status.code().unwrap_or(-1),
        stderr: String::from_utf8_lossy(&out.stderr).to_string(),
    }
}

/// Build curl arguments from string slices.
pub fn args(parts: &[&str]) -> Vec<String> {
    parts.iter().map(|s| s.to_string()).collect()
}

/// The plan for `cfg`; panics when a site is rejected.
pub fn render_all(
    cfg: &WebConfig,
    layout: &role_web::Layout,
    previous: &role_web::Plan,
) -> role_web::Plan {
    let (plan, rejected) = render(cfg, layout, previous);
    assert!(rejected.is_empty(), "{rejected:?}");
    plan
}
