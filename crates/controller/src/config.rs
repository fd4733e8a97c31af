//! Controller configuration file (`controller.toml`).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

/// Configuration errors.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// Anything.
    #[error("{0}")]
    Invalid(String),
}

/// The controller's configuration.
#[derive(Debug, Clone, serde::Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct ControllerConfig {
    /// Address to listen on.
    pub listen: SocketAddr,
    /// Data directory.
    pub data_dir: PathBuf,
}

impl ControllerConfig {
    /// Read and validate a config file.
    pub fn load(_path: &Path) -> Result<Self, ConfigError> {
        unimplemented!()
    }

    /// The base URL clients use (`https://127.0.0.1:8443`).
    pub fn url(&self, _bound: SocketAddr) -> String {
        unimplemented!()
    }
}
