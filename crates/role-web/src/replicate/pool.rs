//! The bounded pool the site loops run their blocking work on (disk I/O, hashing, calls
//! to the hub): a thousand sites share a few threads instead of holding one each. Each
//! piece runs on tokio's blocking threads once it holds one of the pool's permits, so
//! at most [`Pool::size`] replica steps run at once whatever the number of sites.

use std::sync::Arc;

use tokio::sync::Semaphore;

/// Replica steps running at once: enough to keep two cores and the disk busy while one
/// step waits on the hub, few enough that a burst over every site stays bounded.
pub const WORKERS: usize = 8;

/// A handle on the pool (cheap to clone).
#[derive(Debug, Clone)]
pub struct Pool {
    permits: Arc<Semaphore>,
    size: usize,
}

impl Default for Pool {
    fn default() -> Self {
        Pool::new(WORKERS)
    }
}

impl Pool {
    /// A pool running at most `size` pieces at once (at least one).
    pub fn new(size: usize) -> Pool {
        let size = size.max(1);
        Pool {
            permits: Arc::new(Semaphore::new(size)),
            size,
        }
    }

    /// How many pieces may run at once.
    pub fn size(&self) -> usize {
        self.size
    }

    /// Runs `f` on a blocking thread once a permit is free; `None` if it panicked.
    pub async fn run<T: Send + 'static>(
        &self,
        f: impl FnOnce() -> T + Send + 'static,
    ) -> Option<T> {
        let _permit = self.permits.acquire().await.ok()?;
        tokio::task::spawn_blocking(f).await.ok()
    }
}
