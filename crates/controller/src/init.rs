//! `hostplane controller init`: data dir, internal CA, TLS certificate, config file,
//! store, and the first admin with a one-time token.

use std::net::SocketAddr;
use std::path::PathBuf;

/// Init errors.
#[derive(Debug, thiserror::Error)]
pub enum InitError {
    /// Anything.
    #[error("{0}")]
    Other(String),
}

/// What to create.
#[derive(Debug, Clone)]
pub struct InitOptions {
    /// Data directory to create (must be empty or absent).
    pub data_dir: PathBuf,
    /// Address the controller will listen on (written into the config).
    pub listen: SocketAddr,
    /// Store URL; default a SQLite file in the data dir.
    pub store_url: Option<String>,
    /// Extra DNS names / IPs for the TLS certificate.
    pub extra_names: Vec<String>,
    /// Name of the first admin account.
    pub admin_name: String,
    /// Serve plain HTTP instead of HTTPS (loopback only).
    pub plain_http: bool,
}

/// What was created.
#[derive(Debug, Clone)]
pub struct InitOutput {
    /// The written config file.
    pub config_path: PathBuf,
    /// The CA certificate clients must trust.
    pub ca_path: PathBuf,
    /// The first admin's API token (shown once).
    pub admin_token: String,
    /// Base URL of the API.
    pub url: String,
}

/// Create a new controller data dir.
pub async fn init(_opts: InitOptions) -> Result<InitOutput, InitError> {
    unimplemented!()
}
