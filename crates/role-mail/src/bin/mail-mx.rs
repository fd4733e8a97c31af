//! A standalone mail server for benchmarks and crash tests: serves the
//! `MailConfig` in `CONFIG` (JSON) with its SMTP MX on `IP:PORT` (other services on
//! free ports, IMAP on `$IMAP_PORT` when set), state under `DIR`, until killed.
//!
//! `mail-mx IP PORT DIR CONFIG`
//!
//! For replication fault tests, driven as the agent drives the engine:
//! `$REPL_NAME` (this server's name) with `$REPL_IDENTITY` (a directory with
//! `agent.crt`, `agent.key`, `ca.crt`) serves replication on `$REPL_PORT`;
//! `CONFIG` is applied again whenever it changes (as a new config from the
//! controller); `$LEASE_FILE` holds the unix second the mail lease runs to (as
//! heartbeat answers extend it; absent or past: no lease). IMAPS listens on
//! `$IMAPS_PORT` when set.

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;

use proto::agent_v1::MailConfig;
use role_mail::{Limits, Listeners, MailServer};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [ip, port, dir, config] = args.as_slice() else {
        return Err("usage: mail-mx IP PORT DIR CONFIG".into());
    };
    let ip: IpAddr = ip.parse()?;
    let port: u16 = port.parse()?;
    let cfg: MailConfig = serde_json::from_slice(&std::fs::read(config)?)?;
    let bind = |p: u16| -> std::io::Result<tokio::net::TcpListener> {
        let l = std::net::TcpListener::bind(SocketAddr::new(ip, p))?;
        l.set_nonblocking(true)?;
        tokio::net::TcpListener::from_std(l)
    };
    // bench/imap needs a known IMAP port; everything else stays on free ports.
    let imap_port: u16 = match std::env::var("IMAP_PORT") {
        Ok(p) => p.parse()?,
        Err(_) => 0,
    };
    let env_port = |name: &str| -> Result<u16, Box<dyn std::error::Error>> {
        Ok(match std::env::var(name) {
            Ok(p) => p.parse()?,
            Err(_) => 0,
        })
    };
    let listeners = Listeners {
        mx: bind(port)?,
        submission: bind(0)?,
        submissions: bind(0)?,
        pop3: bind(0)?,
        pop3s: bind(0)?,
        imap: bind(imap_port)?,
        imaps: bind(env_port("IMAPS_PORT")?)?,
    };
    let limits = Limits {
        max_conn_per_ip: 1000,
        ..Limits::default()
    };
    let mut server =
        MailServer::start(listeners, &PathBuf::from(dir), "mx.bench", Some(ip), limits)?;
    if let Ok(name) = std::env::var("REPL_NAME") {
        let id = std::env::var("REPL_IDENTITY").map(|d| {
            let d = PathBuf::from(d);
            agent::supervisor::AgentTlsPaths {
                cert: d.join("agent.crt"),
                key: d.join("agent.key"),
                ca: d.join("ca.crt"),
            }
        });
        server.enable_replication(
            &name,
            id.as_ref().ok(),
            Some(bind(env_port("REPL_PORT")?)?),
            std::time::Duration::from_secs(2),
        )?;
    }
    for r in server.apply(&cfg) {
        eprintln!("not applied: {}: {}", r.object, r.reason);
    }
    let lease = agent::lease::MailLease::default();
    server.set_mail_lease(lease.clone());
    let lease_file = std::env::var("LEASE_FILE").ok().map(PathBuf::from);
    let config = PathBuf::from(config);
    let mut applied = std::fs::read(&config)?;
    let server = std::sync::Arc::new(server);
    let s = std::sync::Arc::clone(&server);
    tokio::spawn(async move {
        loop {
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
            if let Some(f) = &lease_file {
                let until: Option<i64> = std::fs::read_to_string(f)
                    .ok()
                    .and_then(|t| t.trim().parse().ok());
                let now = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map(|d| d.as_secs() as i64)
                    .unwrap_or(0);
                if let Some(left) = until.and_then(|u| u64::try_from(u - now).ok()) {
                    lease.extend(std::time::Instant::now() + std::time::Duration::from_secs(left));
                }
            }
            match std::fs::read(&config) {
                Ok(now) if now != applied => {
                    match serde_json::from_slice::<MailConfig>(&now) {
                        Ok(cfg) => {
                            for r in s.apply(&cfg) {
                                eprintln!("not applied: {}: {}", r.object, r.reason);
                            }
                        }
                        Err(e) => eprintln!("config: {e}"),
                    }
                    applied = now;
                }
                _ => {}
            }
        }
    });
    println!(
        "listening on {} (imap {})",
        server.addrs().mx,
        server.addrs().imap
    );
    tokio::signal::ctrl_c().await?;
    Ok(())
}
