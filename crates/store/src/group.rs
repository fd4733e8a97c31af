//! Group commit: several writers' transactions share one database transaction and
//! one fsync.
//!
//! Writers are serialised anyway (one write lock), and on a durable SQLite store the
//! fsync of each commit dominates a small write. So the store keeps one open database
//! transaction (a *batch*) while writers queue for it: each writer works inside its own
//! `SAVEPOINT`, released when it commits. A committing writer that sees others queued
//! leaves the batch open for them and waits; the last writer of the batch (no one
//! queued, or [`MAX_BATCH`] reached) commits the database transaction and wakes every
//! waiter with the outcome. Nobody's `commit` returns before the database commit (and
//! its fsync) did, so an acknowledged write is still durable; a batch whose commit fails
//! fails every writer in it.
//!
//! A writer that drops its transaction rolls back to its savepoint; the other writers
//! of the batch are not affected. A waiter that sees nobody finish the batch (the queued
//! writer was cancelled) finishes it itself.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use sqlx::Any;
use tokio::sync::{oneshot, Mutex, OwnedMutexGuard};

/// Most writers one database transaction carries.
pub(crate) const MAX_BATCH: usize = 64;

/// How often a waiting writer checks that the batch it waits for is still being
/// carried by someone.
const WAITER_CHECK: Duration = Duration::from_millis(5);

/// Savepoint name of the current writer (one at a time, so one name suffices).
pub(crate) const SAVEPOINT: &str = "SAVEPOINT hp_writer";
/// Release of the current writer's savepoint.
pub(crate) const RELEASE: &str = "RELEASE SAVEPOINT hp_writer";
/// Undo of the current writer's work.
pub(crate) const ROLLBACK_TO: &str = "ROLLBACK TO SAVEPOINT hp_writer";

/// The outcome of a batch's database commit, as told to its waiters.
type Outcome = Result<(), Arc<str>>;

/// The open database transaction and the writers whose work it carries.
pub(crate) struct Batch {
    /// The database transaction.
    pub(crate) tx: sqlx::Transaction<'static, Any>,
    /// Writers that released their savepoint and wait for the commit.
    waiters: Vec<oneshot::Sender<Outcome>>,
}

impl Batch {
    /// A new batch around a fresh database transaction.
    pub(crate) fn new(tx: sqlx::Transaction<'static, Any>) -> Self {
        Self {
            tx,
            waiters: Vec::new(),
        }
    }
}

/// The writer lock: whoever holds it may use the batch.
#[derive(Default)]
pub(crate) struct Slot {
    /// The open batch, if any.
    pub(crate) batch: Option<Batch>,
}

/// The writer lock plus the count of writers queued for it.
#[derive(Clone, Default)]
pub(crate) struct Writers {
    /// The lock.
    pub(crate) slot: Arc<Mutex<Slot>>,
    /// Writers waiting for `slot` (a committing writer leaves the batch open for them).
    queued: Arc<AtomicUsize>,
}

/// Decrements the queue count when a queued writer gets the lock or gives up.
struct Queued(Arc<AtomicUsize>);

impl Drop for Queued {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

impl std::fmt::Debug for Writers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Writers")
            .field("queued", &self.queued.load(Ordering::Relaxed))
            .finish_non_exhaustive()
    }
}

impl Writers {
    /// Wait (at most `wait`) for the writer lock; `None` on timeout.
    pub(crate) async fn lock(&self, wait: Duration) -> Option<OwnedMutexGuard<Slot>> {
        self.queued.fetch_add(1, Ordering::SeqCst);
        let _queued = Queued(Arc::clone(&self.queued));
        tokio::time::timeout(wait, Arc::clone(&self.slot).lock_owned())
            .await
            .ok()
    }

    /// Whether another writer waits for the lock.
    fn others_queued(&self) -> bool {
        self.queued.load(Ordering::SeqCst) > 0
    }

    /// The holder of `guard` released its savepoint: either leave the batch open for
    /// the queued writers and wait for whoever commits it, or commit it now. Returns
    /// once the writer's work is durably committed (or failed with the batch).
    pub(crate) async fn finish(&self, mut guard: OwnedMutexGuard<Slot>) -> Outcome {
        let batch_len = guard.batch.as_ref().map_or(0, |b| b.waiters.len());
        if !self.others_queued() || batch_len + 1 >= MAX_BATCH {
            return commit_batch(guard).await;
        }
        let (tx, mut rx) = oneshot::channel();
        if let Some(batch) = guard.batch.as_mut() {
            batch.waiters.push(tx);
        }
        drop(guard);
        loop {
            tokio::select! {
                outcome = &mut rx => {
                    return outcome.unwrap_or_else(|_| Err("the batch was rolled back".into()));
                }
                () = tokio::time::sleep(WAITER_CHECK) => {
                    // Nobody carries the batch on (a queued writer was cancelled):
                    // commit it ourselves.
                    if let Ok(guard) = Arc::clone(&self.slot).try_lock_owned() {
                        if !self.others_queued() && guard.batch.is_some() {
                            let _ = commit_batch(guard).await;
                        }
                    }
                }
            }
        }
    }

    /// A writer dropped its transaction without committing: undo its work (in a task,
    /// since `Drop` cannot wait), then commit the batch for the waiters if nobody is
    /// queued, or leave it to the next writer.
    pub(crate) fn abandon(&self, guard: OwnedMutexGuard<Slot>) {
        let writers = self.clone();
        let Ok(rt) = tokio::runtime::Handle::try_current() else {
            // No runtime: dropping the batch rolls everything back; its waiters see
            // their channel closed and fail.
            drop(guard);
            return;
        };
        rt.spawn(async move {
            let mut guard = guard;
            let undone = match guard.batch.as_mut() {
                Some(batch) => sqlx::query(ROLLBACK_TO)
                    .execute(&mut *batch.tx)
                    .await
                    .and(sqlx::query(RELEASE).execute(&mut *batch.tx).await)
                    .is_ok(),
                None => true,
            };
            if !undone {
                // The transaction is unusable: drop it (waiters fail).
                guard.batch = None;
                return;
            }
            if writers.others_queued() {
                return;
            }
            let has_waiters = guard.batch.as_ref().is_some_and(|b| !b.waiters.is_empty());
            if has_waiters {
                let _ = commit_batch(guard).await;
            } else {
                // Nothing to keep: end the transaction so it holds no lock.
                guard.batch = None;
            }
        });
    }
}

/// Commit the batch in a task (so a cancelled caller cannot interrupt the commit
/// halfway) and tell every waiter the outcome.
async fn commit_batch(mut guard: OwnedMutexGuard<Slot>) -> Outcome {
    let Some(batch) = guard.batch.take() else {
        return Ok(());
    };
    let task = tokio::spawn(async move {
        let outcome: Outcome = batch
            .tx
            .commit()
            .await
            .map_err(|e| Arc::from(e.to_string()));
        for w in batch.waiters {
            let _ = w.send(outcome.clone());
        }
        drop(guard);
        outcome
    });
    task.await
        .unwrap_or_else(|e| Err(Arc::from(format!("commit task failed: {e}"))))
}
