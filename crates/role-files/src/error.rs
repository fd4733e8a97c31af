//! Errors of the files engine.

/// What can go wrong in the files engine (FTP, the sync port, applying a config).
#[derive(Debug, thiserror::Error)]
pub enum FilesError {
    /// An engine option or desired-config value cannot be used.
    #[error("invalid config: {0}")]
    Invalid(String),
    /// TLS material (certificate, key, CA) could not be loaded.
    #[error("tls: {0}")]
    Tls(String),
    /// A file or socket operation failed.
    #[error(transparent)]
    Io(#[from] std::io::Error),
}
