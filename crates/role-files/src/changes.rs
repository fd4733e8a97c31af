//! The change counter: bumped whenever site content changes (an FTP write finished, the
//! periodic rescan saw a difference, or someone called [`Changes::bump`]); the origin's
//! long-poll waits on it.

use tokio::sync::watch;

/// A shared, monotonically increasing content version.
#[derive(Debug, Clone)]
pub struct Changes {
    tx: watch::Sender<u64>,
}

impl Default for Changes {
    fn default() -> Self {
        Self::new()
    }
}

impl Changes {
    /// A counter starting at 1 (so a client asking `after=0` is answered at once).
    pub fn new() -> Self {
        let (tx, _) = watch::channel(1);
        Self { tx }
    }

    /// Record that some site's content changed.
    pub fn bump(&self) {
        self.tx.send_modify(|v| *v += 1);
    }

    /// The current version.
    pub fn current(&self) -> u64 {
        *self.tx.borrow()
    }

    /// Wait until the version differs from `after` (greater, or lower after an origin restart) or `timeout` passes; returns the
    /// version then.
    pub async fn wait_after(&self, after: u64, timeout: std::time::Duration) -> u64 {
        let mut rx = self.tx.subscribe();
        let waited = tokio::time::timeout(timeout, rx.wait_for(|v| *v != after)).await;
        match waited {
            Ok(Ok(v)) => *v,
            _ => self.current(),
        }
    }
}
