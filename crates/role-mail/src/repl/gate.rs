//! Who may write, decided per operation ([`Gate::check`]), and the feed of changed
//! mailboxes the writer's replication server hands to followers ([`Feed`]).
//!
//! The decision itself is pure ([`may_write`]): the config's `writer`, this
//! server's name, whether the mail lease is valid, the wall clock, the highest
//! fencing epoch seen (config or wire) and the epoch this server finished catching
//! up for. The highest epoch is kept durably (`<state>/repl/epoch`) so a restarted
//! writer that was deposed while down does not write on an old config.

use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, RwLock};

use proto::agent_v1::MailWriter;

/// Why this server may not write now (shown to clients and in health).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    /// The config names another server (or none) as the writer.
    #[error("another server writes this mailbox now")]
    NotHolder,
    /// The mail lease expired (cut off from the controller) or was never granted.
    #[error("the writer lease is not valid")]
    NoLease,
    /// The controller's `not_before` has not passed yet.
    #[error("the writer lease starts later")]
    NotYet,
    /// A peer showed a higher fencing epoch than our config's: we are deposed.
    #[error("a newer writer exists")]
    Fenced,
    /// Taking over: still pulling what the previous writer has.
    #[error("catching up with the previous writer")]
    CatchingUp,
}

/// The inputs of a write decision (a snapshot).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Facts<'a> {
    /// The config's writer (`None`: no replication, the primary writes).
    pub writer: Option<&'a MailWriter>,
    /// This server's name.
    pub me: &'a str,
    /// The mail lease is valid now.
    pub lease_valid: bool,
    /// Wall clock, unix seconds.
    pub now: i64,
    /// Highest epoch seen in a config or on the wire.
    pub highest_epoch: u64,
    /// The epoch this server finished its takeover catch-up for.
    pub caught_up: Option<u64>,
}

/// Whether this server may write now (pure).
pub fn may_write(f: &Facts<'_>) -> Result<(), Refusal> {
    let Some(w) = f.writer else {
        return Ok(());
    };
    if w.holder.as_deref() != Some(f.me) {
        return Err(Refusal::NotHolder);
    }
    if w.epoch < f.highest_epoch {
        return Err(Refusal::Fenced);
    }
    if !f.lease_valid {
        return Err(Refusal::NoLease);
    }
    if f.now < w.not_before {
        return Err(Refusal::NotYet);
    }
    if f.caught_up != Some(w.epoch) {
        return Err(Refusal::CatchingUp);
    }
    Ok(())
}

/// The file under `<state>/repl` naming the epoch this server caught up for.
const CAUGHT_UP: &str = "caught-up";

/// The live write gate of one server.
#[derive(Debug)]
pub struct Gate {
    me: RwLock<String>,
    writer: RwLock<Option<MailWriter>>,
    lease: RwLock<agent::lease::MailLease>,
    highest: AtomicU64,
    /// Epoch + 1 of the finished catch-up (0: none).
    caught_up: AtomicU64,
    epoch_file: Option<PathBuf>,
}

impl Gate {
    /// A gate keeping its highest epoch under `state_dir/repl` (`None`: in memory).
    pub fn new(state_dir: Option<&Path>) -> Self {
        let epoch_file = state_dir.map(|d| d.join("repl").join("epoch"));
        let read = |f: Option<PathBuf>| {
            f.and_then(|f| std::fs::read_to_string(f).ok())
                .and_then(|t| t.trim().parse::<u64>().ok())
        };
        let highest = read(epoch_file.clone()).unwrap_or(0);
        // a writer that caught up for an epoch and restarted need not again: no
        // other server wrote at that epoch (only its holder may)
        let caught_up = read(state_dir.map(|d| d.join("repl").join(CAUGHT_UP)))
            .map_or(0, |e| e.saturating_add(1));
        Self {
            me: RwLock::new(String::new()),
            writer: RwLock::new(None),
            lease: RwLock::new(agent::lease::MailLease::default()),
            highest: AtomicU64::new(highest),
            caught_up: AtomicU64::new(caught_up),
            epoch_file,
        }
    }

    /// This server's name (the agent certificate's common name).
    pub fn set_me(&self, me: &str) {
        *self.me.write().unwrap_or_else(|p| p.into_inner()) = me.to_string();
    }

    /// This server's name.
    pub fn me(&self) -> String {
        self.me.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Take the lease the agent's heartbeat loop extends.
    pub fn set_lease(&self, lease: agent::lease::MailLease) {
        *self.lease.write().unwrap_or_else(|p| p.into_inner()) = lease;
    }

    /// The lease (tests extend it directly).
    pub fn lease(&self) -> agent::lease::MailLease {
        self.lease.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// The config's writer.
    pub fn writer(&self) -> Option<MailWriter> {
        self.writer
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// A new config's writer; raises the highest epoch seen.
    pub fn set_writer(&self, w: Option<MailWriter>) {
        if let Some(w) = &w {
            self.saw_epoch(w.epoch);
        }
        *self.writer.write().unwrap_or_else(|p| p.into_inner()) = w;
    }

    /// Record an epoch seen (config or wire); returns the highest. Kept durably.
    pub fn saw_epoch(&self, epoch: u64) -> u64 {
        let prev = self.highest.fetch_max(epoch, Ordering::AcqRel);
        if epoch > prev {
            if let Some(f) = &self.epoch_file {
                let r = f
                    .parent()
                    .map(durable::create_private_dir)
                    .unwrap_or(Ok(()))
                    .and_then(|()| durable::write_atomic(f, epoch.to_string().as_bytes(), 0o600));
                if let Err(e) = r {
                    tracing::warn!(error = %e, "mail replication: cannot record epoch {epoch}");
                }
            }
            tracing::info!(epoch, "mail replication: higher fencing epoch seen");
        }
        prev.max(epoch)
    }

    /// The highest epoch seen.
    pub fn highest_epoch(&self) -> u64 {
        self.highest.load(Ordering::Acquire)
    }

    /// The takeover catch-up for `epoch` is done (kept durably, beside the epoch).
    pub fn set_caught_up(&self, epoch: u64) {
        if self.caught_up() == Some(epoch) {
            return;
        }
        if let Some(f) = self
            .epoch_file
            .as_ref()
            .map(|f| f.with_file_name(CAUGHT_UP))
        {
            let r = f
                .parent()
                .map(durable::create_private_dir)
                .unwrap_or(Ok(()))
                .and_then(|()| durable::write_atomic(&f, epoch.to_string().as_bytes(), 0o600));
            if let Err(e) = r {
                tracing::warn!(error = %e, "mail replication: cannot record the catch-up of epoch {epoch}");
            }
        }
        self.caught_up.store(epoch + 1, Ordering::Release);
    }

    /// The epoch this server caught up for (as holder), if any.
    pub fn caught_up(&self) -> Option<u64> {
        self.caught_up.load(Ordering::Acquire).checked_sub(1)
    }

    /// Whether this server may write now.
    pub fn check(&self) -> Result<(), Refusal> {
        let w = self.writer.read().unwrap_or_else(|p| p.into_inner());
        let me = self.me.read().unwrap_or_else(|p| p.into_inner());
        let lease_valid = self.lease.read().unwrap_or_else(|p| p.into_inner()).valid();
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs() as i64)
            .unwrap_or(0);
        may_write(&Facts {
            writer: w.as_ref(),
            me: &me,
            lease_valid,
            now,
            highest_epoch: self.highest_epoch(),
            caught_up: self.caught_up(),
        })
    }
}

/// Most changes the feed remembers; a follower further behind resyncs fully.
const FEED_MAX: usize = 10_000;

/// Mailboxes changed on this server, in order, numbered (the writer's side of
/// the replication stream: followers wait on it).
#[derive(Debug)]
pub struct Feed {
    seq: tokio::sync::watch::Sender<u64>,
    log: Mutex<VecDeque<(u64, PathBuf)>>,
}

impl Default for Feed {
    fn default() -> Self {
        Self {
            seq: tokio::sync::watch::channel(0).0,
            log: Mutex::new(VecDeque::new()),
        }
    }
}

impl Feed {
    /// The mailbox whose Maildir root is `root` changed.
    pub fn touch(&self, root: &Path) {
        let mut log = self.log.lock().unwrap_or_else(|p| p.into_inner());
        let n = *self.seq.borrow() + 1;
        log.push_back((n, root.to_path_buf()));
        if log.len() > FEED_MAX {
            log.pop_front();
        }
        self.seq.send_replace(n);
    }

    /// The current sequence number.
    pub fn seq(&self) -> u64 {
        *self.seq.borrow()
    }

    /// Subscribe to sequence changes.
    pub fn subscribe(&self) -> tokio::sync::watch::Receiver<u64> {
        self.seq.subscribe()
    }

    /// Roots changed after `since` and the current number; `None`: `since` is
    /// older than the feed remembers (the caller resyncs everything).
    pub fn since(&self, since: u64) -> Option<(Vec<PathBuf>, u64)> {
        let log = self.log.lock().unwrap_or_else(|p| p.into_inner());
        let now = *self.seq.borrow();
        if since > now {
            return None;
        }
        if since < now && log.front().is_none_or(|(n, _)| *n > since + 1) {
            return None;
        }
        let mut roots: Vec<PathBuf> = log
            .iter()
            .filter(|(n, _)| *n > since)
            .map(|(_, r)| r.clone())
            .collect();
        roots.sort();
        roots.dedup();
        Some((roots, now))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn w(holder: &str, epoch: u64, not_before: i64) -> MailWriter {
        MailWriter {
            holder: Some(holder.into()),
            epoch,
            not_before,
        }
    }

    #[test]
    fn the_write_decision() {
        let mine = w("mx1", 3, 100);
        let base = Facts {
            writer: Some(&mine),
            me: "mx1",
            lease_valid: true,
            now: 200,
            highest_epoch: 3,
            caught_up: Some(3),
        };
        assert_eq!(may_write(&base), Ok(()));
        assert_eq!(
            may_write(&Facts {
                writer: None,
                lease_valid: false,
                ..base.clone()
            }),
            Ok(())
        );
        assert_eq!(
            may_write(&Facts {
                me: "mx2",
                ..base.clone()
            }),
            Err(Refusal::NotHolder)
        );
        assert_eq!(
            may_write(&Facts {
                lease_valid: false,
                ..base.clone()
            }),
            Err(Refusal::NoLease)
        );
        assert_eq!(
            may_write(&Facts {
                now: 99,
                ..base.clone()
            }),
            Err(Refusal::NotYet)
        );
        assert_eq!(
            may_write(&Facts {
                highest_epoch: 4,
                ..base.clone()
            }),
            Err(Refusal::Fenced)
        );
        assert_eq!(
            may_write(&Facts {
                caught_up: Some(2),
                ..base.clone()
            }),
            Err(Refusal::CatchingUp)
        );
        let nobody = MailWriter {
            holder: None,
            epoch: 3,
            not_before: 0,
        };
        assert_eq!(
            may_write(&Facts {
                writer: Some(&nobody),
                ..base
            }),
            Err(Refusal::NotHolder)
        );
    }

    #[test]
    fn the_epoch_is_durable_and_only_rises() {
        let d = tempfile::tempdir().unwrap();
        let g = Gate::new(Some(d.path()));
        assert_eq!(g.saw_epoch(5), 5);
        assert_eq!(g.saw_epoch(2), 5);
        assert_eq!(Gate::new(Some(d.path())).highest_epoch(), 5);
    }

    #[test]
    fn the_catch_up_survives_a_restart() {
        let d = tempfile::tempdir().unwrap();
        let g = Gate::new(Some(d.path()));
        assert_eq!(g.caught_up(), None);
        g.set_caught_up(4);
        assert_eq!(Gate::new(Some(d.path())).caught_up(), Some(4));
        g.set_caught_up(6);
        assert_eq!(Gate::new(Some(d.path())).caught_up(), Some(6));
        assert_eq!(Gate::new(None).caught_up(), None);
    }

    #[test]
    fn feed_since() {
        let f = Feed::default();
        assert_eq!(f.since(0), Some((vec![], 0)));
        f.touch(Path::new("/a"));
        f.touch(Path::new("/b"));
        f.touch(Path::new("/a"));
        assert_eq!(
            f.since(0).unwrap(),
            (vec![PathBuf::from("/a"), "/b".into()], 3)
        );
        assert_eq!(f.since(2).unwrap(), (vec![PathBuf::from("/a")], 3));
        assert_eq!(f.since(4), None);
        for _ in 0..FEED_MAX {
            f.touch(Path::new("/c"));
        }
        assert_eq!(f.since(1), None);
    }
}
