//! Errors of the files engine and the sync client.

/// What can go wrong in the files engine, the origin or the sync client.
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
    /// A request to the origin failed.
    #[error("http: {0}")]
    Http(String),
    /// The origin answered something unexpected (status, bad manifest, hash mismatch).
    #[error("protocol: {0}")]
    Protocol(String),
}

impl From<reqwest::Error> for FilesError {
    fn from(e: reqwest::Error) -> Self {
        // `{:#}`-like chain without the URL query (no secrets in URLs here anyway).
        let mut msg = e.to_string();
        let mut src = std::error::Error::source(&e);
        while let Some(s) = src {
            msg.push_str(": ");
            msg.push_str(&s.to_string());
            src = s.source();
        }
        FilesError::Http(msg)
    }
}
