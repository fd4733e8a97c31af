//! The hub over HTTPS with mutual TLS: [`server::run_hub_server`] on the files server,
//! [`client::HttpsHub`] (a [`crate::api::HubApi`]) on the web servers. The client
//! certificate's common name is the calling server; it reaches only the sites the hub
//! grants it ([`crate::hub::Hub::may_sync`]): the web servers of the clusters hosting it.
//!
//! | request | answer |
//! | --- | --- |
//! | `POST /v1/sitesync/<site>/push` with a [`proto::sitesync::Change`] | [`proto::sitesync::Outcome`] |
//! | `GET /v1/sitesync/<site>/blob/<hash>/state` | `{"complete":bool,"received":N}` |
//! | `PUT /v1/sitesync/<site>/blob/<hash>?total=T&offset=O` with the bytes | 204 |
//! | `GET /v1/sitesync/<site>/blob/<hash>?offset=O&max=M` | the bytes (404: gone) |
//! | `GET /v1/sitesync/<site>/log?after=N&max=M[&wait=S]` | [`proto::sitesync::LogRead`]; with `wait`, an empty answer waits up to S seconds (at most 60) for the log to grow |
//! | `GET /v1/sitesync/<site>/manifest` | [`proto::sitesync::TreeManifest`] |
//! | `POST /v1/sitesync/wait` with a [`proto::sitesync::WaitRequest`] | [`proto::sitesync::WaitAnswer`]: the sites with entries after their position, as soon as one has (or after `wait_secs`, at most 60), and those not granted |
//!
//! Errors: 403 not granted, 404 gone, 422 refused, 507 the hub's disk is full.

pub mod client;
pub mod mtls;
pub mod server;

/// Path prefix of every request.
pub const PREFIX: &str = "/v1/sitesync/";

/// The largest chunk accepted in one request.
pub const MAX_CHUNK: usize = 16 << 20;

/// The answer to a blob state request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct BlobStateBody {
    /// Complete and verified.
    pub complete: bool,
    /// Bytes received so far.
    pub received: u64,
}
