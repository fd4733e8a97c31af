//! Authoritative DNS engine for hostplane's `dns` role.
//!
//! - [`zone`]: the zone description the controller sends ([`ZoneData`]), parsed and
//!   validated into [`Zone`]s collected in a [`ZoneSet`].
//! - [`lookup`]: pure answer logic, request bytes → response bytes ([`handle`]) and
//!   name → sections ([`resolve`]); no sockets, unit-tested directly.
//! - [`server`]: UDP and TCP listeners ([`run`]) answering from a live zone set that is
//!   swapped atomically through a `tokio::sync::watch` channel.
//!
//! The answer logic is our own over `hickory-proto` wire types rather than
//! hickory-server's `Catalog`/`Authority`: a zone set swapped as one `Arc` gives atomic
//! multi-zone updates, referral/glue/wildcard/truncation behaviour is explicit and
//! testable without sockets, and the hot path is a few hash lookups with no async
//! trait objects per query.

pub mod lookup;
pub mod server;
pub mod zone;

pub use lookup::{handle, resolve, LookupError, Resolution, Transport};
pub use server::{run, run_with_options, ServerOptions};
pub use zone::{RecordLine, Zone, ZoneData, ZoneError, ZoneSet};
