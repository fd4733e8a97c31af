//! The replica's view of the hub: one trait, [`HubApi`], so the replica logic does not
//! know how it reaches the hub. [`crate::inprocess::InProcess`] implements it by calling
//! a [`crate::hub::Hub`] directly (tests, harness); the HTTPS transport with mutual TLS
//! (the client certificate's name is the calling server) is the second implementation.
//! The calls are blocking: a replica runs its sync on a blocking thread, like its disk I/O.

use std::collections::BTreeMap;

use proto::sitesync::{Change, LogRead, Outcome, TreeManifest, WaitAnswer};

/// Why a call to the hub failed.
#[derive(Debug, thiserror::Error)]
pub enum HubError {
    /// The hub cannot be reached (down, network): the replica keeps its outbox and retries.
    #[error("hub unavailable: {0}")]
    Unavailable(String),
    /// The hub cannot take it now (its disk is full): retry later, keep the outbox.
    #[error("hub full: {0}")]
    Full(String),
    /// No such blob (already replaced): the entry that named it is superseded.
    #[error("not found: {0}")]
    NotFound(String),
    /// The hub refused the request (bad input, not allowed, over a limit, disk full).
    #[error("refused: {0}")]
    Refused(String),
}

/// What a replica asks of the hub, for one site at a time. The calling server's identity
/// is the connection's (the in-process implementation carries it; HTTPS takes it from
/// the client certificate), never a request field.
pub trait HubApi {
    /// Pushes one change; the blob a file put names must have been uploaded first.
    fn push(&self, site: &str, change: &Change) -> Result<Outcome, HubError>;
    /// Bytes of the blob `hash` the hub already holds (complete: `Some(total)`), so an
    /// upload resumes where it stopped.
    fn blob_received(&self, site: &str, hash: &str) -> Result<BlobState, HubError>;
    /// Uploads one chunk of a blob of `total` bytes.
    fn put_chunk(
        &self,
        site: &str,
        hash: &str,
        total: u64,
        offset: u64,
        data: &[u8],
    ) -> Result<(), HubError>;
    /// Reads up to `max` bytes of a file's content by hash, from `offset`.
    fn read_blob(
        &self,
        site: &str,
        hash: &str,
        offset: u64,
        max: usize,
    ) -> Result<Vec<u8>, HubError>;
    /// The log entries after `seq`.
    fn log_after(&self, site: &str, seq: u64, max: usize) -> Result<LogRead, HubError>;
    /// Like [`HubApi::log_after`], but when there is nothing after `seq` the hub answers
    /// as soon as there is, or after `wait` (a long poll: how a replica learns of the
    /// others' writes at once). The default does not wait.
    fn log_wait(
        &self,
        site: &str,
        seq: u64,
        max: usize,
        wait: std::time::Duration,
    ) -> Result<LogRead, HubError> {
        let _ = wait;
        self.log_after(site, seq, max)
    }
    /// One long poll over many sites (`sites`: each with the position the caller has
    /// applied): which have entries after it, answered as soon as one has or after
    /// `wait`, plus the sites the caller may not sync. How a web server with a thousand
    /// sites learns of the others' writes on one connection per files server.
    fn wait_many(
        &self,
        sites: &BTreeMap<String, u64>,
        wait: std::time::Duration,
    ) -> Result<WaitAnswer, HubError>;
    /// The whole tree with its sequence number.
    fn manifest(&self, site: &str) -> Result<TreeManifest, HubError>;
}

/// How much of a blob the hub has.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BlobState {
    /// Complete and verified.
    Complete,
    /// This many bytes of an upload so far.
    Partial(u64),
}
