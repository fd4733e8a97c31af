//! Serve one static site with the web engine (used by `bench/web/run.sh`).
//!
//! `serve <content_root> <ip:port> <domain>`: serves
//! `<content_root>/<domain>/current/` on plain HTTP at `ip:port`, access log off
//! (like the nginx it is compared with), until interrupted. `WEB_THREADS=n` sets the
//! server threads (default: one per CPU, as the agent's engine does; 0 runs on the
//! multi-threaded tokio runtime instead).
//!
//! `HTTPS_ADDR=ip:port` also serves HTTPS (HTTP/2 and HTTP/1.1 by ALPN) there with a
//! self-signed certificate for the domain; `LOG_DIR=dir` turns the access log on
//! (written under `dir`, as the agent's engine does), for profiling as deployed;
//! `CACHE_ENTRY=bytes` sets the largest file kept in memory.

use std::error::Error;
use std::path::PathBuf;
use std::sync::Arc;

use proto::agent_v1::WebConfig;
use role_web::{render, Layout, ServerOptions};

/// The allocator of the `hostplane` binary, so the numbers match production.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> Result<(), Box<dyn Error>> {
    let mut argv = std::env::args().skip(1);
    let (Some(root), Some(addr), Some(domain)) = (argv.next(), argv.next(), argv.next()) else {
        return Err("usage: serve <content_root> <ip:port> <domain>".into());
    };
    let https_addr = std::env::var("HTTPS_ADDR").ok();
    let tls = match &https_addr {
        Some(_) => {
            let ck = rcgen::generate_simple_self_signed(vec![domain.clone()])?;
            serde_json::json!({"cert_pem": ck.cert.pem(), "key_pem": ck.signing_key.serialize_pem()})
        }
        None => serde_json::Value::Null,
    };
    let site = serde_json::from_value(serde_json::json!({
        "domain": domain, "mode": "all", "active": true, "tls": tls,
    }))?;
    let cfg = WebConfig {
        sites: vec![site].into_iter().map(std::sync::Arc::new).collect(),
        files_origin: None,
        peers: Vec::new(),
        acme_challenges: Vec::new(),
    };
    let layout = Layout {
        content_root: PathBuf::from(root),
        php_dir: std::env::temp_dir().join("role-web-bench-php"),
        php_versions: Vec::new(),
        sessions: None,
        sendmail_path: None,
    };
    let (plan, rejected) = render(&cfg, &layout, &role_web::Plan::default());
    for r in &rejected {
        eprintln!("not served: {}: {}", r.object, r.reason);
    }
    let plan = Arc::new(plan);
    let (_tx, rx) = tokio::sync::watch::channel(plan);
    let listener = tokio::net::TcpListener::bind(&addr).await?;
    let https = match &https_addr {
        Some(a) => Some(tokio::net::TcpListener::bind(a).await?),
        None => None,
    };
    let log_dir = std::env::var_os("LOG_DIR").map(PathBuf::from);
    let threads = match std::env::var("WEB_THREADS") {
        Ok(n) => n.parse()?,
        Err(_) => std::thread::available_parallelism().map_or(1, |n| n.get()),
    };
    eprintln!("serving {domain} on http://{addr}/ with {threads} server threads");
    let opts = ServerOptions {
        access_log: log_dir.is_some(),
        log_dir,
        threads,
        cache_entry: match std::env::var("CACHE_ENTRY") {
            Ok(n) => n.parse()?,
            Err(_) => ServerOptions::default().cache_entry,
        },
        ..ServerOptions::default()
    };
    let stop = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    role_web::run_with_options(Some(listener), https, rx, stop, opts).await?;
    Ok(())
}
