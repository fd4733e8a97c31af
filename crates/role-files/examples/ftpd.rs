//! A standalone hostplane FTP server for `bench/ftp/run.sh`: one account, plain FTP
//! allowed (the benchmark compares plain FTP with vsftpd's).
//!
//! `ftpd <addr:port> <hub dir> <user> <password> [passive LOW-HIGH]`; serves the
//! site-file hub's tree of `bench.example` (`<hub dir>/bench.example/tree/`) until killed.

use std::collections::BTreeMap;
use std::sync::Arc;

use argon2::password_hash::{PasswordHasher, SaltString};
use role_files::auth::Accounts;
use role_files::ftp::{run_ftp, FtpShared};
use role_files::plan::{parse_port_range, Account};
use role_files::tls::SwapCert;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    if args.len() < 5 {
        return Err("usage: ftpd <addr:port> <sites_root> <user> <password> [LOW-HIGH]".into());
    }
    let root = std::path::PathBuf::from(&args[2]);
    let hub = Arc::new(sitesync::hub::Hub::open(sitesync::hub::HubConfig::new(
        root,
    ))?);
    hub.manifest("bench.example")?;
    let salt = SaltString::from_b64("YmVuY2hzYWx0YmVuY2hzYWx0")?;
    let hash = argon2::Argon2::default()
        .hash_password(args[4].as_bytes(), &salt)
        .map_err(|e| e.to_string())?
        .to_string();
    let accounts = Accounts::default();
    let mut map = BTreeMap::new();
    map.insert(
        args[3].clone(),
        Account {
            username: args[3].clone(),
            domain: "bench.example".into(),
            password_hash: hash,
            home: "bench.example".into(),
            quota_bytes: 0,
        },
    );
    accounts.set(map);
    let ports = parse_port_range(args.get(5).map(String::as_str).unwrap_or("33000-33099"))?;
    let listener = tokio::net::TcpListener::bind(&args[1]).await?;
    let shared = FtpShared::new(hub, accounts, Arc::new(SwapCert::default()), ports, false);
    eprintln!("hostplane ftpd on {}", listener.local_addr()?);
    run_ftp(listener, shared, std::future::pending()).await;
    Ok(())
}
