//! The durable relay queue of a secondary MX (and of aliases on a secondary's
//! domains): each message is two files in `<state_dir>/queue/`, `<id>.msg` (the
//! message, CRLF) and `<id>.env` (the envelope as JSON, written atomically). The
//! `.msg` is written and fsynced first, then the `.env` is renamed into place and the
//! directory fsynced: an `.env` is the commit point, so a crash leaves either a
//! complete entry or an orphan `.msg` that [`Queue::open`] removes. Only then is
//! the 250 sent.
//!
//! Entries go either to a fixed relay (`ip:port`: a secondary's primary) or to
//! `mx:<domain>` (outbound mail from submission and remote alias destinations):
//! MX lookup through the configured resolver, STARTTLS when offered.
//! Permanent failures (5xx, NXDOMAIN, null MX, 5 days of retries) are handed to
//! the engine as [`Bounce`]s, which it turns into DSNs to the sender.
//!
//! The relay loop ([`Queue::run`]) hands due messages to their primary over SMTP,
//! from the server's own address, one connection per primary per pass, and removes
//! an entry only after the primary's 250 to DATA. Temporary failures back off
//! exponentially (10 s doubling, at most 1 h, given up after 5 days);
//! [`Queue::flush`] makes every entry due now.
//!
//! Delivery is at least once: a crash after the primary's 250 and before the `.env`
//! is removed sends that message again after restart (the window is one
//! `unlink`). Relayed copies carry an unguessable relay id
//! ([`crate::dedup`]) with which the primary drops such a second copy.

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};
use tokio::sync::{watch, Notify};

use crate::client::{SmtpClient, TxOutcome};

/// First retry delay; doubles with every attempt.
const BACKOFF_BASE_SECS: u64 = 10;
/// Longest retry delay.
const BACKOFF_MAX_SECS: u64 = 3600;
/// Give up (and drop, logged) after this long.
const MAX_AGE_SECS: u64 = 5 * 24 * 3600;

/// The envelope of one queued message (the `.env` file).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct QueueEntry {
    /// Queue id (also the file names).
    pub id: String,
    /// Where it goes: the primary's `ip:port`.
    pub relay: String,
    /// Envelope sender (may be empty: a bounce).
    pub from: String,
    /// Recipients still to deliver.
    pub rcpts: Vec<String>,
    /// Message size in bytes.
    pub size: u64,
    /// When it was queued (Unix seconds).
    pub created: u64,
    /// Delivery attempts so far.
    pub attempts: u32,
    /// Next attempt (Unix seconds).
    pub next_attempt: u64,
    /// Why the last attempt failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
}

/// Where outbound (`mx:<domain>`) entries go: the resolver for MX lookups and
/// the SMTP port of the exchangers (25; tests use others).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Outbound {
    /// DNS resolver (`ip:port`).
    pub resolver: SocketAddr,
    /// Port of the mail exchangers.
    pub port: u16,
}

/// A permanent failure to report to the sender (a DSN).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bounce {
    /// The failed entry (its `from` gets the report).
    pub entry: QueueEntry,
    /// Failed recipients and why.
    pub failed: Vec<(String, String)>,
    /// The original message's header section (CRLF).
    pub headers: Vec<u8>,
}

/// The queue of one engine.
pub struct Queue {
    dir: PathBuf,
    bind: Option<IpAddr>,
    hostname: String,
    entries: Mutex<BTreeMap<String, QueueEntry>>,
    wake: Notify,
    outbound: Mutex<Option<Outbound>>,
    bounces: Mutex<Option<tokio::sync::mpsc::UnboundedSender<Bounce>>>,
}

impl std::fmt::Debug for Queue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Queue").field("dir", &self.dir).finish()
    }
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// Delay before attempt `attempts + 1`.
pub fn backoff(attempts: u32) -> u64 {
    let exp = attempts.saturating_sub(1).min(20);
    BACKOFF_BASE_SECS
        .saturating_mul(1u64 << exp)
        .min(BACKOFF_MAX_SECS)
}

impl Queue {
    /// Open (create) the queue in `dir`, loading what a previous run left.
    pub fn open(dir: &Path, bind: Option<IpAddr>, hostname: &str) -> std::io::Result<Arc<Self>> {
        durable::create_private_dir(dir)?;
        let mut entries = BTreeMap::new();
        let mut msgs = Vec::new();
        for e in std::fs::read_dir(dir)? {
            let path = e?.path();
            match path.extension().and_then(|x| x.to_str()) {
                Some("env") => match std::fs::read(&path)
                    .ok()
                    .and_then(|b| serde_json::from_slice::<QueueEntry>(&b).ok())
                {
                    Some(mut entry) => {
                        // after a restart every entry is tried once at once
                        entry.next_attempt = 0;
                        entries.insert(entry.id.clone(), entry);
                    }
                    None => tracing::warn!(path = %path.display(), "unreadable queue envelope"),
                },
                Some("msg") => msgs.push(path),
                _ if path
                    .file_name()
                    .is_some_and(|n| n.to_string_lossy().starts_with('.')) =>
                {
                    // a temporary file of an interrupted atomic write
                    let _ = std::fs::remove_file(&path);
                }
                _ => {}
            }
        }
        for m in msgs {
            let id = m.file_stem().and_then(|s| s.to_str()).unwrap_or_default();
            if !entries.contains_key(id) {
                // Never acknowledged: the envelope was not committed.
                let _ = std::fs::remove_file(&m);
            }
        }
        Ok(Arc::new(Self {
            dir: dir.to_path_buf(),
            bind,
            hostname: hostname.to_string(),
            entries: Mutex::new(entries),
            wake: Notify::new(),
            outbound: Mutex::new(None),
            bounces: Mutex::new(None),
        }))
    }

    /// Enable outbound delivery (MX lookups through `o.resolver`).
    pub fn set_outbound(&self, o: Option<Outbound>) {
        *self
            .outbound
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = o;
    }

    /// Whether remote recipients can be queued.
    pub fn outbound(&self) -> Option<Outbound> {
        *self
            .outbound
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Where permanent failures are reported (the engine turns them into DSNs).
    pub fn set_bounces(&self, tx: tokio::sync::mpsc::UnboundedSender<Bounce>) {
        *self
            .bounces
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(tx);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, QueueEntry>> {
        self.entries
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Queue `message` for `rcpts` at `relay`, durably (blocking file I/O: call from
    /// `spawn_blocking`). Returns the queue id.
    pub fn enqueue(
        &self,
        relay: String,
        from: &str,
        rcpts: Vec<String>,
        message: &[u8],
    ) -> std::io::Result<String> {
        let id = crate::maildir::unique_name("q").replace('.', "-");
        let msg = self.dir.join(format!("{id}.msg"));
        let tagged;
        let message = if relay.starts_with("mx:") {
            message
        } else {
            tagged = crate::dedup::tag(&id, message);
            &tagged[..]
        };
        let result = (|| {
            use std::io::Write;
            let mut f = std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(&msg)?;
            f.write_all(message)?;
            f.sync_all()?;
            drop(f);
            let entry = QueueEntry {
                id: id.clone(),
                relay,
                from: from.to_string(),
                rcpts,
                size: message.len() as u64,
                created: now(),
                attempts: 0,
                next_attempt: 0,
                last_error: None,
            };
            self.persist(&entry)?;
            self.lock().insert(id.clone(), entry);
            Ok(())
        })();
        if result.is_err() {
            let _ = std::fs::remove_file(&msg);
        }
        self.wake.notify_one();
        result.map(|()| id)
    }

    fn persist(&self, entry: &QueueEntry) -> std::io::Result<()> {
        let bytes = serde_json::to_vec(entry).map_err(std::io::Error::other)?;
        durable::write_atomic(&self.dir.join(format!("{}.env", entry.id)), &bytes, 0o600)
    }

    fn remove(&self, id: &str) {
        self.lock().remove(id);
        // The envelope first: it is the commit point.
        let _ = std::fs::remove_file(self.dir.join(format!("{id}.env")));
        let _ = std::fs::remove_file(self.dir.join(format!("{id}.msg")));
        let _ = durable::sync_dir(&self.dir);
    }

    /// Every queued message, oldest first.
    pub fn list(&self) -> Vec<QueueEntry> {
        let mut v: Vec<_> = self.lock().values().cloned().collect();
        v.sort_by_key(|e| (e.created, e.id.clone()));
        v
    }

    /// Make every entry due now and wake the relay loop.
    pub fn flush(&self) {
        for e in self.lock().values_mut() {
            e.next_attempt = 0;
        }
        self.wake.notify_one();
    }

    /// Deliver due entries until `stop` turns true.
    pub async fn run(self: Arc<Self>, mut stop: watch::Receiver<bool>) {
        loop {
            if *stop.borrow() {
                return;
            }
            self.pass().await;
            let next = self.lock().values().map(|e| e.next_attempt).min();
            let wait = match next {
                Some(t) => Duration::from_secs(t.saturating_sub(now()).max(1)),
                None => Duration::from_secs(3600),
            };
            tokio::select! {
                _ = self.wake.notified() => {}
                _ = tokio::time::sleep(wait) => {}
                r = stop.changed() => if r.is_err() { return },
            }
        }
    }

    /// One delivery pass over every due entry, one task per relay.
    pub async fn pass(self: &Arc<Self>) {
        let t = now();
        let mut by_relay: BTreeMap<String, Vec<QueueEntry>> = BTreeMap::new();
        for e in self.lock().values() {
            if e.next_attempt <= t {
                by_relay.entry(e.relay.clone()).or_default().push(e.clone());
            }
        }
        let mut set = tokio::task::JoinSet::new();
        for (relay, entries) in by_relay {
            let q = Arc::clone(self);
            set.spawn(async move { q.deliver_to(&relay, entries).await });
        }
        while set.join_next().await.is_some() {}
    }

    /// Connect to `relay`: `ip:port`, or `mx:<domain>` through the exchangers.
    async fn connect(&self, relay: &str) -> Result<SmtpClient, Failure> {
        let Some(domain) = relay.strip_prefix("mx:") else {
            let addr: SocketAddr = relay
                .parse()
                .map_err(|_| Failure::Permanent(format!("bad relay {relay}")))?;
            return SmtpClient::connect(addr, self.bind, &self.hostname)
                .await
                .map_err(|e| Failure::Temporary(e.to_string()));
        };
        let Some(o) = self.outbound() else {
            return Err(Failure::Temporary(
                "outbound delivery is not configured".into(),
            ));
        };
        let hosts = crate::dns::mx_hosts(o.resolver, self.bind, domain)
            .await
            .map_err(|e| match e {
                crate::dns::DnsError::Permanent(m) => Failure::Permanent(m),
                crate::dns::DnsError::Temporary(m) => Failure::Temporary(m),
            })?;
        let mut last = String::from("no mail exchanger");
        for ip in hosts {
            match SmtpClient::connect(SocketAddr::new(ip, o.port), self.bind, &self.hostname).await
            {
                Ok(c) => return Ok(c),
                Err(e) => last = format!("{ip}: {e}"),
            }
        }
        Err(Failure::Temporary(last))
    }

    async fn deliver_to(&self, relay: &str, entries: Vec<QueueEntry>) {
        let mut client = self.connect(relay).await;
        for entry in entries {
            let c = match &mut client {
                Ok(c) => c,
                Err(Failure::Temporary(e)) => {
                    self.retry_later(entry, e.clone());
                    continue;
                }
                Err(Failure::Permanent(e)) => {
                    let failed = entry.rcpts.iter().map(|r| (r.clone(), e.clone())).collect();
                    self.settle(
                        entry,
                        TxOutcome {
                            rejected: failed,
                            deferred: vec![],
                        },
                    );
                    continue;
                }
            };
            let message = match tokio::fs::read(self.dir.join(format!("{}.msg", entry.id))).await {
                Ok(m) => m,
                Err(e) => {
                    tracing::error!(id = %entry.id, error = %e, "queued message unreadable; dropped");
                    self.remove(&entry.id);
                    continue;
                }
            };
            match c.send(&entry.from, &entry.rcpts, &message).await {
                Ok(outcome) => self.settle(entry, outcome),
                Err(e) => {
                    self.retry_later(entry, e.to_string());
                    client = Err(Failure::Temporary(e.to_string()));
                }
            }
        }
        if let Ok(c) = client {
            c.quit().await;
        }
    }

    fn settle(&self, mut entry: QueueEntry, out: TxOutcome) {
        for (rcpt, reply) in &out.rejected {
            tracing::warn!(id = %entry.id, rcpt = %rcpt, reply = %reply, "recipient refused permanently");
        }
        if !out.rejected.is_empty() {
            self.bounce(&entry, out.rejected.clone());
        }
        if out.deferred.is_empty() {
            tracing::info!(id = %entry.id, relay = %entry.relay, "delivered");
            self.remove(&entry.id);
            return;
        }
        entry.rcpts = out.deferred.iter().map(|(r, _)| r.clone()).collect();
        let why = out
            .deferred
            .first()
            .map(|(_, r)| r.clone())
            .unwrap_or_default();
        self.retry_later(entry, why);
    }

    fn retry_later(&self, mut entry: QueueEntry, why: String) {
        entry.attempts += 1;
        let t = now();
        if t.saturating_sub(entry.created) > MAX_AGE_SECS {
            tracing::error!(id = %entry.id, error = %why, "gave up after 5 days");
            let failed = entry
                .rcpts
                .iter()
                .map(|r| (r.clone(), why.clone()))
                .collect();
            self.bounce(&entry, failed);
            self.remove(&entry.id);
            return;
        }
        entry.next_attempt = t + backoff(entry.attempts);
        entry.last_error = Some(why);
        tracing::info!(id = %entry.id, attempts = entry.attempts, error = ?entry.last_error, "deferred");
        if let Err(e) = self.persist(&entry) {
            tracing::warn!(id = %entry.id, error = %e, "could not record the attempt");
        }
        if let Some(slot) = self.lock().get_mut(&entry.id) {
            *slot = entry;
        }
    }
}

impl Queue {
    /// Report `failed` recipients of `entry` to its sender (never for bounces).
    fn bounce(&self, entry: &QueueEntry, failed: Vec<(String, String)>) {
        if entry.from.is_empty() {
            return;
        }
        let message = std::fs::read(self.dir.join(format!("{}.msg", entry.id))).unwrap_or_default();
        let end = message
            .windows(4)
            .position(|w| w == b"\r\n\r\n")
            .map(|p| p + 2)
            .unwrap_or(message.len());
        let b = Bounce {
            entry: entry.clone(),
            failed,
            headers: message[..end].to_vec(),
        };
        let tx = self
            .bounces
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone();
        match tx {
            Some(tx) if tx.send(b).is_ok() => {}
            _ => tracing::warn!(id = %entry.id, "no bounce handler; failure not reported"),
        }
    }
}

/// Why a connection attempt failed.
#[derive(Debug, Clone)]
enum Failure {
    Temporary(String),
    Permanent(String),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_and_caps() {
        assert_eq!(backoff(1), 10);
        assert_eq!(backoff(2), 20);
        assert_eq!(backoff(5), 160);
        assert_eq!(backoff(40), 3600);
    }

    #[test]
    fn entries_survive_reopen_and_orphans_go() {
        let dir = tempfile::tempdir().unwrap();
        let q = Queue::open(dir.path(), None, "h").unwrap();
        let id = q
            .enqueue(
                "127.0.0.1:25".into(),
                "a@x.test",
                vec!["b@y.test".into()],
                b"m\r\n",
            )
            .unwrap();
        std::fs::write(dir.path().join("orphan.msg"), b"x").unwrap();
        std::fs::write(dir.path().join(".x.env.tmp1.2"), b"x").unwrap();
        drop(q);
        let q = Queue::open(dir.path(), None, "h").unwrap();
        let l = q.list();
        assert_eq!(l.len(), 1);
        assert_eq!(l[0].id, id);
        assert!(!dir.path().join("orphan.msg").exists());
        assert!(!dir.path().join(".x.env.tmp1.2").exists());
        q.remove(&id);
        assert!(q.list().is_empty());
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
    }
}
