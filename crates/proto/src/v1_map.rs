//! REST bodies of the live picture of the platform (issue 18 point 5):
//! `GET /v1/map/platform` (admins: every cluster and server with its health and
//! what it carries), `GET /v1/map/services` (any account: where its own web, mail
//! and DNS are served and whether each is healthy, never a server's identity) and
//! the events of `GET /v1/map/events` (server-sent events); re-exported from
//! [`crate::v1`].

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// `GET /v1/map/platform` (admins).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct PlatformMapView {
    /// Every cluster.
    pub clusters: Vec<MapClusterView>,
    /// Every server.
    pub servers: Vec<MapServerView>,
}

/// A cluster on the platform map.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct MapClusterView {
    /// Name.
    pub name: String,
    /// Role of its servers.
    pub role: String,
    /// Whether its servers are ranked (DNS and mail: rank 0 is the primary).
    pub ranked: bool,
    /// A mail cluster's current mailbox writer, if one is chosen.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mail_writer: Option<String>,
}

/// What one server carries.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct MapCarries {
    /// Sites served (web: `all` sites of its cluster and the `single` sites active
    /// on it; files: the sites of its cluster's domains).
    pub sites: u64,
    /// DNS zones (the domains placed on its DNS cluster).
    pub zones: u64,
    /// Mailboxes (of the domains placed on its mail cluster).
    pub mailboxes: u64,
    /// Customer databases on its db cluster.
    pub databases: u64,
}

/// A server on the platform map.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct MapServerView {
    /// Name.
    pub name: String,
    /// Role.
    pub role: String,
    /// Cluster name.
    pub cluster: String,
    /// Rank in its cluster.
    pub rank: u16,
    /// `primary` (rank 0 of a DNS or mail cluster), `secondary`, or `member`
    /// (clusters without ranks).
    pub position: String,
    /// ISO 3166-1 alpha-2 country.
    pub country: String,
    /// Region (free text; may be empty).
    pub region: String,
    /// Host name.
    pub hostname: String,
    /// `unknown`, `up`, `suspect` or `down`.
    pub health: String,
    /// Drained for maintenance.
    pub drained: bool,
    /// What it carries.
    pub carries: MapCarries,
}

/// `GET /v1/map/services`: where the caller's services run.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ServiceMapView {
    /// One entry per (service, country, region), sorted.
    pub locations: Vec<ServiceLocationView>,
}

/// One service of the caller's domains in one region.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ServiceLocationView {
    /// `web`, `mail` or `dns`.
    pub service: String,
    /// ISO 3166-1 alpha-2 country.
    pub country: String,
    /// Region (may be empty).
    pub region: String,
    /// `up` (every server there is up), `degraded` (some are), `down` (none is),
    /// or `unknown` (none has reported yet).
    pub health: String,
    /// The caller's domains served there, sorted.
    pub domains: Vec<String>,
}

/// The SSE event name of a server's health change on `GET /v1/map/events`
/// (admins; data: [`MapHealthEvent`]).
pub const MAP_EVENT_HEALTH: &str = "health";
/// The SSE event name of a server drained or undrained (admins; data:
/// [`MapDrainEvent`]).
pub const MAP_EVENT_DRAIN: &str = "drain";
/// The SSE event name telling a non-admin that the health of a cluster serving
/// its domains changed (data: [`MapServicesEvent`]; read `/v1/map/services` again).
pub const MAP_EVENT_SERVICES: &str = "services";
/// The SSE event name sent first, once the stream is live (data `{}`).
pub const MAP_EVENT_READY: &str = "ready";
/// The SSE event name sent when events were missed (a slow reader): read the map
/// again (data `{}`).
pub const MAP_EVENT_RESYNC: &str = "resync";

/// Data of a [`MAP_EVENT_HEALTH`] event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct MapHealthEvent {
    /// Server name.
    pub server: String,
    /// Its cluster.
    pub cluster: String,
    /// Previous state.
    pub from: String,
    /// New state.
    pub to: String,
}

/// Data of a [`MAP_EVENT_DRAIN`] event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct MapDrainEvent {
    /// Server name.
    pub server: String,
    /// Drained now.
    pub drained: bool,
}

/// Data of a [`MAP_EVENT_SERVICES`] event: which service changed, nothing about
/// the server.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct MapServicesEvent {
    /// `web`, `mail` or `dns`.
    pub service: String,
}
