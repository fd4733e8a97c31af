//! Authoritative DNS engine for hostplane's `dns` role.
//!
//! - [`zone`]: the zone description the controller sends ([`ZoneData`]), parsed and
//!   validated into [`Zone`]s collected in a [`ZoneSet`].
//! - [`lookup`]: pure name resolution, name → sections ([`resolve`]); [`request`]:
//!   request bytes → response bytes ([`handle`]: EDNS0, truncation, transfers,
//!   NOTIFY, TSIG); no sockets, unit-tested directly.
//! - [`server`]: UDP and TCP listeners ([`run`]) answering from a live zone set that is
//!   swapped atomically through a `tokio::sync::watch` channel; UDP in batches of
//!   datagrams (`recvmmsg`/`sendmmsg`, `udp`).
//! - [`xfr`]: AXFR/IXFR record streams, the IXFR journal diff, and applying received
//!   transfers; [`tsig`]: RFC 8945 HMAC-SHA256 signing and verification.
//! - [`client`]: outgoing SOA queries, transfers and NOTIFY; [`persist`]: transferred
//!   zones on disk.
//! - [`plan`]: the pure step from the controller's config and what is served so far to
//!   what must change (zones parsed only when their content changed) and the zones
//!   refused.
//! - [`engine`]: the agent adapter ([`start_engine`]): converges on a plan; primary
//!   (journal, NOTIFY) and secondary (refresh/retry/expire, persistence) zone management.
//! - [`fuzzing`]: the request-path entry point of the fuzz target and proptests.
//!
//! The answer logic is our own over `hickory-proto` wire types rather than
//! hickory-server's `Catalog`/`Authority`: a zone set swapped as one `Arc` gives atomic
//! multi-zone updates, referral/glue/wildcard/truncation behaviour is explicit and
//! testable without sockets, and the hot path is a few hash lookups with no async
//! trait objects per query.

pub mod client;
pub mod engine;
pub mod fuzzing;
pub mod lookup;
pub mod persist;
pub mod plan;
pub mod request;
pub mod server;
pub mod tsig;
mod udp;
pub mod xfr;
pub mod zone;

pub use engine::{start_engine, DnsEngine};
pub use lookup::{resolve, Resolution};
pub use request::{handle, handle_from, LookupError, Outcome, Transport};
pub use server::{run, run_with_options, ServerOptions};
pub use zone::{RecordLine, Zone, ZoneData, ZoneError, ZoneMeta, ZoneSet};
