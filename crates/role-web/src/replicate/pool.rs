//! The bounded pool the site loops run their blocking work on (disk I/O, hashing, calls
//! to the hub): a thousand sites share a few threads instead of holding one each. Each
//! piece runs on tokio's blocking threads once it holds one of the pool's permits, so
//! at most [`Pool::size`] replica steps run at once whatever the number of sites.
//!
//! Two lanes: background work (opening a replica, the whole-tree comparisons at start
//! and every few minutes) may hold at most [`BACKGROUND`] of the permits, so a write
//! captured here or announced by the hub never queues behind a thousand sites'
//! start-up comparisons.

use std::sync::Arc;

use tokio::sync::Semaphore;

/// Replica steps running at once: enough to keep two cores and the disk busy while one
/// step waits on the hub, few enough that a burst over every site stays bounded.
pub const WORKERS: usize = 8;

/// Permits background work may hold at once (the rest are kept for writes).
pub const BACKGROUND: usize = 6;

/// A handle on the pool (cheap to clone).
#[derive(Debug, Clone)]
pub struct Pool {
    permits: Arc<Semaphore>,
    background: Arc<Semaphore>,
    size: usize,
}

impl Default for Pool {
    fn default() -> Self {
        Pool::new(WORKERS, BACKGROUND)
    }
}

impl Pool {
    /// A pool running at most `size` pieces at once (at least one), of which at most
    /// `background` (at least one) background pieces.
    pub fn new(size: usize, background: usize) -> Pool {
        let size = size.max(1);
        Pool {
            permits: Arc::new(Semaphore::new(size)),
            background: Arc::new(Semaphore::new(background.clamp(1, size))),
            size,
        }
    }

    /// How many pieces may run at once.
    pub fn size(&self) -> usize {
        self.size
    }

    /// Like [`Pool::run`] for background work: waits for a background permit first.
    pub async fn run_background<T: Send + 'static>(
        &self,
        f: impl FnOnce() -> T + Send + 'static,
    ) -> Option<T> {
        let _lane = self.background.acquire().await.ok()?;
        self.run(f).await
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::Duration;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn background_work_leaves_room_for_writes() {
        let pool = Pool::new(3, 2);
        let busy = Arc::new(AtomicUsize::new(0));
        let most = Arc::new(AtomicUsize::new(0));
        let mut background = Vec::new();
        for _ in 0..6 {
            let (pool, busy, most) = (pool.clone(), busy.clone(), most.clone());
            background.push(tokio::spawn(async move {
                pool.run_background(move || {
                    let n = busy.fetch_add(1, Ordering::SeqCst) + 1;
                    most.fetch_max(n, Ordering::SeqCst);
                    std::thread::sleep(Duration::from_millis(100));
                    busy.fetch_sub(1, Ordering::SeqCst);
                })
                .await
            }));
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
        // a write runs at once, not after the six background pieces
        let t = std::time::Instant::now();
        assert_eq!(pool.run(|| 7).await, Some(7));
        assert!(t.elapsed() < Duration::from_millis(90), "{:?}", t.elapsed());
        for b in background {
            b.await.unwrap().unwrap();
        }
        assert_eq!(most.load(Ordering::SeqCst), 2);
        assert_eq!(pool.run(|| -> u8 { panic!("a step panics") }).await, None);
    }
}
