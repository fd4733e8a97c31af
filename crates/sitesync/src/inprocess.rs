//! [`HubApi`] implemented by calling a [`Hub`] in the same process, as a named server:
//! the test harness's transport (it can be switched off to play a dead files server).
//! Like any transport it lets a server reach only the sites the hub grants it.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use proto::sitesync::{Change, LogRead, Outcome, TreeManifest, WaitAnswer};

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

    fn hub(&self, site: &str) -> Result<&Hub, HubError> {
        if !self.up.load(Ordering::SeqCst) {
            return Err(HubError::Unavailable("hub is down".into()));
        }
        if !self.hub.may_sync(&self.server, site) {
            return Err(HubError::Refused(format!(
                "{} may not sync {site}",
                self.server
            )));
        }
        Ok(&self.hub)
    }
}

impl HubApi for InProcess {
    fn push(&self, site: &str, change: &Change) -> Result<Outcome, HubError> {
        self.hub(site)?.push(site, &self.server, change)
    }

    fn blob_received(&self, site: &str, hash: &str) -> Result<BlobState, HubError> {
        self.hub(site)?.blob_received(site, hash)
    }

    fn put_chunk(
        &self,
        site: &str,
        hash: &str,
        total: u64,
        offset: u64,
        data: &[u8],
    ) -> Result<(), HubError> {
        self.hub(site)?.put_chunk(site, hash, total, offset, data)
    }

    fn read_blob(
        &self,
        site: &str,
        hash: &str,
        offset: u64,
        max: usize,
    ) -> Result<Vec<u8>, HubError> {
        self.hub(site)?.read_blob(site, hash, offset, max)
    }

    fn log_after(&self, site: &str, seq: u64, max: usize) -> Result<LogRead, HubError> {
        self.hub(site)?.log_after(site, seq, max)
    }

    /// Answers at once (the in-process hub has no runtime to wait on).
    fn wait_many(
        &self,
        sites: &BTreeMap<String, u64>,
        _wait: std::time::Duration,
    ) -> Result<WaitAnswer, HubError> {
        if !self.up.load(Ordering::SeqCst) {
            return Err(HubError::Unavailable("hub is down".into()));
        }
        let (granted, denied) = self.hub.split_granted(&self.server, sites);
        Ok(WaitAnswer {
            ready: self.hub.ready(&granted),
            denied,
        })
    }

    fn manifest(&self, site: &str) -> Result<TreeManifest, HubError> {
        self.hub(site)?.manifest(site)
    }
}
