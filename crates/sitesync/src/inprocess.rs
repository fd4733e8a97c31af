//! [`HubApi`] implemented by calling a [`Hub`] in the same process, as a named server:
//! the test harness's transport (it can be switched off to play a dead files server).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use proto::sitesync::{Change, LogRead, Outcome, TreeManifest};

use crate::api::{BlobState, HubApi, HubError};
use crate::hub::Hub;

/// One server's connection to an in-process hub.
#[derive(Debug, Clone)]
pub struct InProcess {
    hub: Arc<Hub>,
    server: String,
    up: Arc<AtomicBool>,
}

impl InProcess {
    /// Connects `server` to `hub`; `up` shared between connections switches the hub off.
    pub fn new(hub: Arc<Hub>, server: &str, up: Arc<AtomicBool>) -> InProcess {
        InProcess {
            hub,
            server: server.to_string(),
            up,
        }
    }

    fn hub(&self) -> Result<&Hub, HubError> {
        if self.up.load(Ordering::SeqCst) {
            Ok(&self.hub)
        } else {
            Err(HubError::Unavailable("hub is down".into()))
        }
    }
}

impl HubApi for InProcess {
    fn push(&self, site: &str, change: &Change) -> Result<Outcome, HubError> {
        self.hub()?.push(site, &self.server, change)
    }

    fn blob_received(&self, site: &str, hash: &str) -> Result<BlobState, HubError> {
        self.hub()?.blob_received(site, hash)
    }

    fn put_chunk(
        &self,
        site: &str,
        hash: &str,
        total: u64,
        offset: u64,
        data: &[u8],
    ) -> Result<(), HubError> {
        self.hub()?.put_chunk(site, hash, total, offset, data)
    }

    fn read_blob(
        &self,
        site: &str,
        hash: &str,
        offset: u64,
        max: usize,
    ) -> Result<Vec<u8>, HubError> {
        self.hub()?.read_blob(site, hash, offset, max)
    }

    fn log_after(&self, site: &str, seq: u64, max: usize) -> Result<LogRead, HubError> {
        self.hub()?.log_after(site, seq, max)
    }

    fn manifest(&self, site: &str) -> Result<TreeManifest, HubError> {
        self.hub()?.manifest(site)
    }
}
