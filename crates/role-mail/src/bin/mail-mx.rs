//! A standalone mail server for benchmarks and crash tests: serves the
//! `MailConfig` in `CONFIG` (JSON) with its SMTP MX on `IP:PORT` (other services on
//! free ports, IMAP on `$IMAP_PORT` when set), state under `DIR`, until killed.
//!
//! `mail-mx IP PORT DIR CONFIG`

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
    let listeners = Listeners {
        mx: bind(port)?,
        submission: bind(0)?,
        submissions: bind(0)?,
        pop3: bind(0)?,
        pop3s: bind(0)?,
        imap: bind(imap_port)?,
        imaps: bind(0)?,
    };
    let limits = Limits {
        max_conn_per_ip: 1000,
        ..Limits::default()
    };
    let server = MailServer::start(listeners, &PathBuf::from(dir), "mx.bench", Some(ip), limits)?;
    for r in server.apply(&cfg) {
        eprintln!("not applied: {}: {}", r.object, r.reason);
    }
    println!(
        "listening on {} (imap {})",
        server.addrs().mx,
        server.addrs().imap
    );
    tokio::signal::ctrl_c().await?;
    Ok(())
}
