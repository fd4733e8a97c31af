//! Serve one static site with the web engine (used by `bench/web/run.sh`).
//!
//! `serve <content_root> <ip:port> <domain>`: serves
//! `<content_root>/<domain>/current/` on plain HTTP at `ip:port`, access log off
//! (like the nginx it is compared with), until interrupted. `WEB_THREADS=n` sets the
//! server threads (default: one per CPU, as the agent's engine does; 0 runs on the
//! multi-threaded tokio runtime instead).

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
    let site = serde_json::from_value(serde_json::json!({
        "domain": domain, "mode": "all", "active": true,
    }))?;
    let cfg = WebConfig {
        sites: vec![site].into_iter().map(std::sync::Arc::new).collect(),
        files_origin: None,
        peers: Vec::new(),
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
    let threads = match std::env::var("WEB_THREADS") {
        Ok(n) => n.parse()?,
        Err(_) => std::thread::available_parallelism().map_or(1, |n| n.get()),
    };
    eprintln!("serving {domain} on http://{addr}/ with {threads} server threads");
    let opts = ServerOptions {
        log_dir: None,
        access_log: false,
        threads,
        ..ServerOptions::default()
    };
    let stop = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    role_web::run_with_options(Some(listener), None, rx, stop, opts).await?;
    Ok(())
}
