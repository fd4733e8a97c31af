//! Controller ⇄ agent protocol, version 1 (`/v1/agent/...`).
//!
//! The endpoints, all JSON (`Content-Type: application/json`) over HTTPS:
//!
//! | call | auth | request | success |
//! | --- | --- | --- | --- |
//! | `POST /v1/agent/join` | TLS verified against the controller CA, join token in the body | [`JoinRequest`] | `200` [`JoinResponse`] |
//! | `GET /v1/agent/config?after=REV` | mutual TLS (agent certificate) | [`ConfigQuery`] | `200` [`DesiredConfig`] or `304 Not Modified` |
//! | `POST /v1/agent/heartbeat` | mutual TLS | [`Heartbeat`] | `200` [`HeartbeatAck`] |
//! | `GET /v1/agent/config?after=REV&delta=1` | mutual TLS | [`ConfigQuery`] | `200` [`crate::agent_delta::ConfigDelta`] or `304` |
//! | `GET /v1/agent/config?after=REV&delta=1&resync=1` | mutual TLS | [`ConfigQuery`] | `200` [`crate::agent_delta::ConfigDelta`] at once |
//! | `GET /v1/agent/blobs/{hash}` | mutual TLS | — | `200` the blob (JSON), `404` if not in this server's config |
//!
//! The agent is identified on the mutual-TLS calls by its client certificate, whose
//! subject common name is the server name the controller returned at join.
//!
//! The config call is a blocking query: the controller answers `200` with the whole
//! desired config as soon as the server's config revision is greater than `after`, or
//! `304` (empty body) when nothing changed within its wait (about 30 s). `after=0`
//! always answers at once with the full config.
//!
//! Requests reject unknown fields. Responses do not, so a controller may add
//! optional fields without breaking older agents; an incompatible change bumps
//! [`DesiredConfig::format`] or becomes `agent_v2`.

use model::{DbEngine, PlacementMode};
use serde::{Deserialize, Serialize};

pub use crate::agent_v1_heartbeat::*;
pub use crate::agent_v1_sitemail::*;

/// Path of the join call.
pub const JOIN_PATH: &str = "/v1/agent/join";
/// Path of the blocking desired-config query.
pub const CONFIG_PATH: &str = "/v1/agent/config";
/// Path of the heartbeat call.
pub const HEARTBEAT_PATH: &str = "/v1/agent/heartbeat";
/// Port of the site-file hub of files servers (HTTPS, mutual TLS), on the files
/// server's own address: web servers' replicas push and pull there.
pub const SYNC_PORT: u16 = 7443;
/// The [`DesiredConfig::format`] this module describes.
pub const CONFIG_FORMAT: u32 = 1;

// ---------------------------------------------------------------- join

/// `POST /v1/agent/join`: a new server asks for its certificate with a join token.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JoinRequest {
    /// The one-time join token an admin created for a cluster.
    pub token: String,
    /// PKCS#10 certificate signing request (PEM) for the agent's own key; its
    /// subject common name is `name`.
    pub csr_pem: String,
    /// The server name the agent asks for, e.g. `web-1`.
    pub name: String,
    /// Public host name, e.g. `web-1.hosting.example`.
    pub hostname: String,
    /// Public addresses of the server (IP literals).
    pub addresses: Vec<String>,
    /// ISO 3166-1 alpha-2 country code.
    pub country: String,
    /// Free-form region, e.g. `eu-west`.
    pub region: String,
    /// Notes on the hardware profile.
    pub hardware: String,
}

/// Answer to a successful [`JoinRequest`].
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct JoinResponse {
    /// The server name registered (the client certificate's common name).
    pub server: String,
    /// The cluster the token was made for.
    pub cluster: String,
    /// That cluster's role: `web`, `dns`, `mail`, `files` or `db`.
    pub role: String,
    /// The agent's client certificate (PEM), signed by the controller CA.
    pub cert_pem: String,
    /// The controller CA certificate (PEM): the only root the agent trusts afterwards.
    pub ca_pem: String,
}

// ---------------------------------------------------------------- desired config

/// Query of `GET /v1/agent/config`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConfigQuery {
    /// The revision the agent already has; `0` asks for the full config at once.
    #[serde(default)]
    pub after: i64,
    /// `1` asks for a [`crate::agent_delta::ConfigDelta`] from `after` instead of
    /// the whole document (a snapshot of items when `after` is unknown); `0` or
    /// absent: the whole [`DesiredConfig`] (older agents).
    #[serde(default)]
    pub delta: u8,
    /// `1` with `delta=1`: the agent's periodic resync. Answered at once (no
    /// waiting for a change) with the delta from `after`, usually empty, whose
    /// digest the agent checks against its items; a snapshot only when `after` is
    /// unknown to the controller. Before, every resync asked `after=0` and each
    /// agent received and parsed every item (30 MB at 100,000 sites) every minute.
    /// A controller that predates it answers `400` (unknown field).
    #[serde(default)]
    pub resync: u8,
}

impl ConfigQuery {
    /// The URL query text, `after=REV[&delta=N][&resync=N]`: fields that are `0`
    /// are left out, so a query without `delta` or `resync` is one every
    /// controller version understands. Pure; what the controller parses back.
    pub fn to_query_string(&self) -> String {
        let mut q = format!("after={}", self.after);
        if self.delta != 0 {
            q.push_str(&format!("&delta={}", self.delta));
        }
        if self.resync != 0 {
            q.push_str(&format!("&resync={}", self.resync));
        }
        q
    }
}

/// The whole desired state of one server.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DesiredConfig {
    /// Format of this document; [`CONFIG_FORMAT`] (1) here.
    pub format: u32,
    /// The server's config revision; grows with every change that affects it.
    pub revision: i64,
    /// Who the server is.
    pub server: ServerIdentity,
    /// What its role engine must serve.
    pub role: RoleConfig,
}

/// The server's own identity as the controller knows it.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct ServerIdentity {
    /// Server name, e.g. `web-1`.
    pub name: String,
    /// Role: `web`, `dns`, `mail`, `files` or `db`.
    pub role: String,
    /// Cluster name, e.g. `web-eu`.
    pub cluster: String,
    /// In DNS and mail clusters: 0 is the primary, 1.. the secondaries.
    pub rank: u16,
    /// Public addresses (IP literals).
    pub addresses: Vec<String>,
    /// Public host name.
    pub hostname: String,
}

/// The role-specific part of a desired config, tagged by `"role"`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(tag = "role", rename_all = "lowercase")]
pub enum RoleConfig {
    /// HTTP(S) virtual hosting.
    Web(WebConfig),
    /// Authoritative DNS.
    Dns(DnsConfig),
    /// SMTP, IMAP, POP3.
    Mail(MailConfig),
    /// FTP and site-content origin.
    Files(FilesConfig),
    /// Customer databases.
    Db(DbRoleConfig),
}

impl RoleConfig {
    /// The role's wire name: `web`, `dns`, `mail`, `files` or `db`.
    pub fn role(&self) -> &'static str {
        match self {
            RoleConfig::Web(_) => "web",
            RoleConfig::Dns(_) => "dns",
            RoleConfig::Mail(_) => "mail",
            RoleConfig::Files(_) => "files",
            RoleConfig::Db(_) => "db",
        }
    }
}

/// Desired state of a web server.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct WebConfig {
    /// Every site of the server's cluster (each web server holds all of them).
    ///
    /// Shared (`Arc`; JSON form unchanged): the controller holds every web
    /// server's config, and the servers of a cluster carry the same sites, so
    /// each server's list points at one copy of each entry (at 100,000 sites on
    /// 50 web servers, a copy per server was ~300 MB).
    #[serde(default, with = "shared_sites")]
    pub sites: Vec<std::sync::Arc<WebSite>>,
    /// Base URL of the files server the site content is pulled from, if the
    /// domain's files role is placed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub files_origin: Option<String>,
    /// The other web servers of this server's cluster, where each PHP session write
    /// is replicated (issue 15; `role-web`'s `sessions`). Empty: sessions stay on
    /// this server.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub peers: Vec<WebPeer>,
    /// Pending ACME HTTP-01 challenges of this cluster's sites (issue 17): each is
    /// answered at `http://<name>/.well-known/acme-challenge/<token>` before any
    /// redirect to HTTPS. The controller tells the CA to validate only after every
    /// web server of the site applied a config holding the token.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub acme_challenges: Vec<AcmeChallenge>,
}

/// One ACME HTTP-01 challenge (RFC 8555 section 8.3).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct AcmeChallenge {
    /// The name being validated (the site's domain or one of its aliases).
    pub name: String,
    /// The challenge token (base64url), the last path segment.
    pub token: String,
    /// The body to answer: `token.thumbprint`.
    pub key_authorization: String,
}

/// Port of PHP session replication between the web servers of a cluster (HTTPS,
/// mutual TLS with the agents' certificates), on each web server's own address.
pub const SESSION_PORT: u16 = 7444;

/// Another web server of the same cluster, for PHP session replication.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct WebPeer {
    /// Its server name (the common name of its agent certificate).
    pub name: String,
    /// Its session replication address, `ip:port`.
    pub address: String,
}

/// One site on a web server.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct WebSite {
    /// Primary host name (A-labels).
    pub domain: String,
    /// Further host names.
    #[serde(default)]
    pub aliases: Vec<String>,
    /// Serve `.php` through PHP-FPM.
    #[serde(default)]
    pub php: bool,
    /// `single` or `all`.
    pub mode: PlacementMode,
    /// Whether this server serves the site now (always for `all`; for `single`,
    /// only on the server the scheduler chose). Inactive sites are kept synced.
    pub active: bool,
    /// Answer plain-HTTP requests with a permanent redirect to HTTPS.
    #[serde(default)]
    pub https_redirect: bool,
    /// The site's certificate (for the domain and its aliases) and key: from the
    /// controller CA unless the customer uploaded one. `None` from older controllers
    /// (then the site is served on HTTP only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls: Option<TlsMaterial>,
    /// Base URL (`https://ip:port`) of the files server this site's content is
    /// pulled from (the site's domain's files placement); `None` when the domain has
    /// no files role (then the content stays as it is).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub files_origin: Option<String>,
    /// Paths of the site (relative to its root, e.g. `wp-content/cache`) that are not
    /// replicated: each web server keeps its own copy (caches).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub local_paths: Vec<String>,
    /// The site's disk limit in MiB (the plan's `site_disk_mb`; 0: none). Over it,
    /// PHP's next write fails at once and the site's error log says why.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub quota_mb: u64,
    /// The folder of the site's tree that is served (a normalised
    /// `model::web::DocRoot`, e.g. `public`); `None`: the whole tree. PHP's
    /// `open_basedir` still covers the whole tree.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub docroot: Option<String>,
    /// Send `Strict-Transport-Security` on HTTPS answers. The controller sets it
    /// only when the site asked for it *and* its certificate is one browsers trust
    /// (uploaded by the customer), never with the internal CA's.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub hsts: bool,
    /// The PHP version of the site's pool (`8.2`); `None`: the server's default.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub php_version: Option<String>,
    /// The site's `php.ini` values (`model::web::INI_KEYS`, normal form).
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub php_ini: std::collections::BTreeMap<String, String>,
    /// Where the site's PHP `mail()` goes: its domain's mail cluster and the
    /// site's submission secret; `None` when the domain has no mail role.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mail: Option<SiteMail>,
    /// The site's cron jobs and the one server of the cluster that runs them;
    /// `None` when the site has none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cron: Option<WebCron>,
}

/// A site's cron jobs as its web servers carry them (the same item on each; only
/// the server named `holder` runs them, and only while its heartbeat lease
/// [`crate::agent_v1::HeartbeatAck::cron_lease_secs`] is valid).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct WebCron {
    /// The server that runs them (its name); `None`: no usable server now.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub holder: Option<String>,
    /// Unix seconds (controller clock) before which the holder must not start a
    /// run: when the holder changed, the previous holder's last possible lease end.
    #[serde(default)]
    pub not_before: i64,
    /// Wall-clock bound of one run in seconds (the owner's `php_execution_s`).
    pub timeout_s: u64,
    /// The jobs, in id order.
    pub jobs: Vec<WebCronJob>,
}

/// One cron job (schedule and command checked by `model::cron`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct WebCronJob {
    /// Its id within the site.
    pub id: u32,
    /// `model::cron::CronSchedule` text.
    pub schedule: String,
    /// `model::cron::CronCommand` text.
    pub command: String,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

/// A certificate chain and its private key, both PEM. Travels only inside the
/// desired config (mutual TLS; the agent caches it 0600).
///
/// The PEMs are shared (`Arc<str>`): every server of a cluster carries the same
/// certificate of each site, and the controller holds every server's config, so
/// one copy per site serves them all (JSON form unchanged: two strings).
#[derive(Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct TlsMaterial {
    /// The certificate first, then intermediates.
    #[serde(with = "shared_str")]
    pub cert_pem: std::sync::Arc<str>,
    /// The private key (PKCS#8 or SEC1 PEM).
    #[serde(with = "shared_str")]
    pub key_pem: std::sync::Arc<str>,
}

/// Serde of an `Arc<str>` as a plain JSON string (serde's `rc` feature is not
/// enabled in this workspace).
mod shared_str {
    use std::sync::Arc;

    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(v: &Arc<str>, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(v)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Arc<str>, D::Error> {
        String::deserialize(d).map(Arc::from)
    }
}

/// Serde of an optional shared [`ZoneContent`] as the plain object (serde's `rc`
/// feature is not enabled in this workspace).
mod shared_zone {
    use std::sync::Arc;

    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    use super::ZoneContent;

    pub fn serialize<S: Serializer>(v: &Option<Arc<ZoneContent>>, s: S) -> Result<S::Ok, S::Error> {
        v.as_deref().serialize(s)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(
        d: D,
    ) -> Result<Option<Arc<ZoneContent>>, D::Error> {
        Ok(Option::<ZoneContent>::deserialize(d)?.map(Arc::new))
    }
}

/// Serde of a list of shared [`WebSite`]s as the plain array (serde's `rc` feature
/// is not enabled in this workspace).
mod shared_sites {
    use std::sync::Arc;

    use serde::{Deserialize, Deserializer, Serializer};

    use super::WebSite;

    pub fn serialize<S: Serializer>(v: &[Arc<WebSite>], s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(v.iter().map(|w| &**w))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<Arc<WebSite>>, D::Error> {
        Ok(Vec::<WebSite>::deserialize(d)?
            .into_iter()
            .map(Arc::new)
            .collect())
    }
}

impl std::fmt::Debug for TlsMaterial {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print the key.
        f.debug_struct("TlsMaterial")
            .field("cert_pem", &format!("{} bytes", self.cert_pem.len()))
            .finish_non_exhaustive()
    }
}

/// Desired state of a DNS server.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct DnsConfig {
    /// Zones this server is authoritative for.
    #[serde(default)]
    pub zones: Vec<ZoneAssignment>,
}

/// One zone on a DNS server.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct ZoneAssignment {
    /// Zone apex (A-labels, no trailing dot).
    pub domain: String,
    /// This server is the zone's primary (else it is a secondary).
    pub primary: bool,
    /// Addresses of the primary: where a secondary transfers from and accepts
    /// NOTIFY from.
    #[serde(default)]
    pub primary_addresses: Vec<String>,
    /// Addresses of the secondaries: whom a primary notifies and allows to transfer.
    #[serde(default)]
    pub secondaries: Vec<String>,
    /// The zone's whole content as the controller built it (the primary serves it;
    /// a secondary may use it to check what it transferred). Absent from older
    /// controllers.
    ///
    /// Shared (`Arc`; JSON form unchanged): an agent rebuilds its whole config from
    /// the one before on every change, and at 10,000 zones a deep copy of every
    /// zone's records was tens of megabytes allocated and freed per revision (the
    /// DNS agent's peak, and the pages its allocator kept after it).
    #[serde(default, skip_serializing_if = "Option::is_none", with = "shared_zone")]
    pub zone: Option<std::sync::Arc<ZoneContent>>,
    /// Where a secondary transfers from and which NOTIFY sources it accepts:
    /// the primary's DNS endpoints as `ip:port` (port 53, or 10053 for an
    /// unprivileged engine). Empty on the primary.
    #[serde(default)]
    pub primary_endpoints: Vec<String>,
    /// Whom the primary notifies on every change, as `ip:port`: the cluster's
    /// secondaries and the cluster's extra external secondaries. Their addresses
    /// may transfer (AXFR/IXFR) the zone. Empty on secondaries.
    #[serde(default)]
    pub notify: Vec<String>,
    /// The TSIG key transfers and NOTIFY of this zone are signed with, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tsig: Option<TsigKey>,
}

/// A TSIG key (RFC 8945) shared by a zone's primary and secondaries.
#[derive(Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct TsigKey {
    /// Key name, a domain name such as `xfr.dns-eu.hostplane.` .
    pub name: String,
    /// Algorithm: `hmac-sha256` (the only one the controller issues).
    pub algorithm: String,
    /// The shared secret, base64.
    pub secret: String,
    /// After a rotation (`hostplane cluster tsig rotate`): the secret this key
    /// replaced (same name and algorithm), still accepted on incoming requests until
    /// its expiry, so secondaries can be switched over during a grace period.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub previous: Option<PreviousTsigSecret>,
}

impl std::fmt::Debug for TsigKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TsigKey")
            .field("name", &self.name)
            .field("algorithm", &self.algorithm)
            .field("previous", &self.previous)
            .finish_non_exhaustive()
    }
}

/// The secret a [`TsigKey`] replaced, valid until `not_after`.
#[derive(Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct PreviousTsigSecret {
    /// The previous shared secret, base64.
    pub secret: String,
    /// Unix seconds after which the previous secret is refused.
    pub not_after: u64,
}

impl std::fmt::Debug for PreviousTsigSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PreviousTsigSecret")
            .field("not_after", &self.not_after)
            .finish_non_exhaustive()
    }
}

/// The content of one zone: every record, the SOA first.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct ZoneContent {
    /// Zone apex (A-labels, no trailing dot).
    pub origin: String,
    /// The SOA serial (also in the SOA record's data); grows, in RFC 1982 serial
    /// arithmetic, with every change of the other records.
    pub serial: u32,
    /// The records, SOA first, then sorted by name and type.
    pub records: Vec<ZoneRecord>,
}

/// One resource record of a [`ZoneContent`].
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct ZoneRecord {
    /// Absolute owner name (A-labels, lowercase, no trailing dot).
    pub name: String,
    /// Time to live in seconds.
    pub ttl: u32,
    /// Type mnemonic, e.g. `A`, `MX`, `SOA` (class is always IN).
    pub rtype: String,
    /// RDATA in zone-file presentation format, names absolute with a trailing dot,
    /// e.g. `10 mx1.hosting.example.` or `"v=spf1 mx -all"`.
    pub data: String,
}

/// Desired state of a mail server.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct MailConfig {
    /// Mail domains this server accepts for.
    #[serde(default)]
    pub domains: Vec<MailDomain>,
    /// Retry the whole queue now whenever this number changes (`hostplane mail
    /// flush`, or the controller seeing the primary come back).
    #[serde(default)]
    pub flush: u64,
    /// The server's certificate (host name and addresses) for STARTTLS, submission
    /// and POP3S/IMAPS, from the controller CA.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls: Option<TlsMaterial>,
    /// The other mail servers of this server's cluster. Mail one of them relays here
    /// (a secondary MX forwarding to the primary) was checked where it entered, so
    /// it is not checked again against the relay's address; and no message from
    /// outside may carry an `Authentication-Results` header in one of their names.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub peers: Vec<MailPeer>,
    /// Which server of this cluster writes its mailboxes now (issue 16). `None`
    /// (an older controller, or replication not set up): the primary writes and
    /// nothing is replicated, as before.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub writer: Option<MailWriter>,
}

/// Port of mailbox replication between the mail servers of a cluster (TLS, mutual
/// TLS with the agents' certificates), on each mail server's own address: the
/// writer streams its changes to the others there, and a server that was away
/// catches up there (issue 16).
pub const MAIL_REPL_PORT: u16 = 7445;

/// The single writer of a mail cluster's mailboxes (issue 16), decided by the
/// controller's placement path. The holder delivers, accepts IMAP/POP3 changes
/// and assigns UIDs, but only while its mail lease
/// ([`crate::agent_v1::HeartbeatAck::mail_lease_secs`]) is valid and not before
/// `not_before`; every other server applies the holder's replication stream and
/// serves reads.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct MailWriter {
    /// The writing server's name; `None`: no usable server now (nobody writes).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub holder: Option<String>,
    /// Fencing epoch, raised by the controller on every change of holder. The
    /// writer stamps its replication stream with it; a server refuses a stream
    /// whose epoch is below the highest it has seen, in its config or on the wire.
    pub epoch: u64,
    /// Unix seconds (controller clock) before which the holder must not accept
    /// writes: when the holder changed, the previous holder's last possible lease
    /// end plus a clock margin.
    #[serde(default)]
    pub not_before: i64,
}

/// Another mail server of the same cluster.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct MailPeer {
    /// Its addresses (where its relayed mail comes from).
    pub addresses: Vec<String>,
    /// The names it may sign `Authentication-Results` with (server name, host name).
    pub names: Vec<String>,
    /// Its server name (the common name of its agent certificate, which its
    /// replication connections present); empty from older controllers.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub server: String,
    /// Its mailbox replication address, `ip:`[`MAIL_REPL_PORT`]; `None`: no
    /// replication with it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replication: Option<String>,
}

/// One mail domain on a mail server.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct MailDomain {
    /// Domain name (A-labels).
    pub domain: String,
    /// This server is the domain's primary MX (stores mail); else a secondary that
    /// queues for the primary.
    pub primary: bool,
    /// Local parts of the domain's mailboxes (valid recipients).
    #[serde(default)]
    pub mailboxes: Vec<String>,
    /// Aliases: `[local part, [destination addresses]]`.
    #[serde(default)]
    pub aliases: Vec<(String, Vec<String>)>,
    /// Mailbox logins (POP3, IMAP, submission) with their quota: on the primary
    /// only; secondaries check recipients against `mailboxes` and `aliases`.
    #[serde(default)]
    pub accounts: Vec<MailAccount>,
    /// On a secondary: the primary's SMTP endpoint (`ip:port`) queued mail is
    /// relayed to. `None` on the primary.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub primary_smtp: Option<String>,
    /// The domain's DKIM signing key (its public half is the TXT record
    /// `<selector>._domainkey.<domain>` in the domain's zone).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dkim: Option<DkimKey>,
    /// The domain's RSA DKIM key, signing beside `dkim` (receivers that verify
    /// only RSA); absent until the controller has made it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dkim_rsa: Option<DkimKey>,
    /// Outgoing mail limits on submission for this domain and each of its mailboxes
    /// (`None`: every default of [`MailLimits`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limits: Option<MailLimits>,
    /// The domain's site may submit its PHP mail (login `site:<domain>`), on the
    /// primary and the secondaries alike.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub site_login: Option<SiteLogin>,
}

/// Outgoing mail limits on submission, so one cracked mailbox cannot get the
/// cluster's addresses blocklisted. Each `None` takes the documented default.
/// Counted per mail server, in memory, per clock hour.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct MailLimits {
    /// Messages one mailbox may submit per hour (default 200).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub messages_per_hour_per_mailbox: Option<u32>,
    /// Messages all the domain's mailboxes together may submit per hour (default 1000).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub messages_per_hour_per_domain: Option<u32>,
    /// Recipients of one submitted message (default 100).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recipients_per_message: Option<u32>,
}

impl MailLimits {
    /// Default of `messages_per_hour_per_mailbox`.
    pub const DEFAULT_PER_MAILBOX: u32 = 200;
    /// Default of `messages_per_hour_per_domain`.
    pub const DEFAULT_PER_DOMAIN: u32 = 1000;
    /// Default of `recipients_per_message`.
    pub const DEFAULT_RECIPIENTS: u32 = 100;

    /// Messages per hour per mailbox, default applied.
    pub fn per_mailbox(&self) -> u32 {
        self.messages_per_hour_per_mailbox
            .unwrap_or(Self::DEFAULT_PER_MAILBOX)
    }

    /// Messages per hour per domain, default applied.
    pub fn per_domain(&self) -> u32 {
        self.messages_per_hour_per_domain
            .unwrap_or(Self::DEFAULT_PER_DOMAIN)
    }

    /// Recipients per message, default applied.
    pub fn recipients(&self) -> u32 {
        self.recipients_per_message
            .unwrap_or(Self::DEFAULT_RECIPIENTS)
    }
}

/// One mailbox login on a mail primary.
#[derive(Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct MailAccount {
    /// Local part (the mailbox is `local_part@domain`).
    pub local_part: String,
    /// argon2id PHC string of the password.
    pub password_hash: String,
    /// Quota in MiB; 0 means unlimited.
    #[serde(default)]
    pub quota_mb: u64,
    /// A disabled mailbox still receives mail but cannot log in.
    #[serde(default = "yes")]
    pub enabled: bool,
}

fn yes() -> bool {
    true
}

impl std::fmt::Debug for MailAccount {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MailAccount")
            .field("local_part", &self.local_part)
            .field("quota_mb", &self.quota_mb)
            .field("enabled", &self.enabled)
            .finish_non_exhaustive()
    }
}

/// A domain's DKIM signing key.
#[derive(Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct DkimKey {
    /// Selector, e.g. `hp1`.
    pub selector: String,
    /// `rsa-sha256` or `ed25519-sha256`.
    pub algorithm: String,
    /// The private key, PKCS#8 PEM.
    pub private_key_pem: String,
}

impl std::fmt::Debug for DkimKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DkimKey")
            .field("selector", &self.selector)
            .field("algorithm", &self.algorithm)
            .finish_non_exhaustive()
    }
}

/// Desired state of a files server.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct FilesConfig {
    /// Domains whose site content this server holds and serves to web servers.
    #[serde(default)]
    pub sites: Vec<String>,
    /// FTP logins.
    #[serde(default)]
    pub ftp_accounts: Vec<FtpAccountConfig>,
    /// The server's certificate (host name and addresses) for FTPS and for the
    /// site-file hub web servers replicate from, from the controller CA.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls: Option<TlsMaterial>,
    /// Server names (agent certificate common names) allowed to pull content: the
    /// web servers of the clusters that host this server's sites. Each may pull
    /// only the sites it hosts: `[server, [domains]]`.
    #[serde(default)]
    pub sync_clients: Vec<(String, Vec<String>)>,
    /// Content deployed through the API: each site's latest archive. The engine
    /// fetches one it has not applied yet from the controller
    /// ([`deployment_path`]), unpacks it safely and replaces the site's files with it.
    #[serde(default)]
    pub deployments: Vec<SiteDeployment>,
    /// Replication settings of the sites that have any beyond the defaults (keyed by
    /// domain; a site absent here has none).
    #[serde(default)]
    pub site_options: Vec<FilesSiteOptions>,
    /// Restores asked through the API (`hostplane site restore`), each applied once
    /// (by id) and its result reported in [`FilesReport::restores`].
    #[serde(default)]
    pub restores: Vec<FileRestore>,
    /// Days overwritten and deleted files are kept (`site_versions_days`); `None`:
    /// the engine's default, 7.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub versions_days: Option<u32>,
}

/// One site's replication settings on its files server.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct FilesSiteOptions {
    /// The site's domain.
    pub domain: String,
    /// Paths that survive deployments (`site update --keep wp-content/uploads`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub keep_paths: Vec<String>,
    /// Paths not replicated (`site update --local wp-content/cache`); a deployment
    /// leaves them alone too.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub local_paths: Vec<String>,
    /// `single` or `all`: SQLite databases and lock files in an `all` site are
    /// reported ([`FilesSiteStatus::sqlite_paths`]).
    pub mode: PlacementMode,
    /// Disk limit in MiB (0: none); the files server refuses what would exceed it.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub quota_mb: u64,
}

/// `hostplane site restore DOMAIN PATH [--at TIME]`: bring back a deleted or
/// overwritten file (or folder) from the files server's kept versions.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct FileRestore {
    /// Unique id of the request (the engine applies each id once).
    pub id: String,
    /// The site.
    pub domain: String,
    /// The path inside the site.
    pub path: String,
    /// Restore the version current at this time (unix seconds); `None`: the last
    /// version replaced or deleted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub at: Option<i64>,
}

/// The latest API deployment of one site.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct SiteDeployment {
    /// The site's domain.
    pub domain: String,
    /// Deployment id (BLAKE3 hex of the tar archive).
    pub id: String,
    /// Archive size in bytes.
    pub size: u64,
}

/// Path (under a controller's base URL) of the archive of deployment `id`
/// (`GET`, mutual TLS).
pub fn deployment_path(id: &str) -> String {
    format!("/v1/agent/deployments/{id}")
}

/// One FTP login on a files server.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct FtpAccountConfig {
    /// Login name.
    pub username: String,
    /// The site (domain) whose files it reaches.
    pub domain: String,
    /// argon2id PHC string of the password.
    pub password_hash: String,
    /// Folder inside the site's files; empty for the site root.
    #[serde(default)]
    pub home: String,
    /// Upload quota in MiB; 0 means unlimited.
    #[serde(default)]
    pub quota_mb: u64,
}

/// Desired state of a database server.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct DbRoleConfig {
    /// Databases to exist.
    #[serde(default)]
    pub databases: Vec<DbConfig>,
    /// Logins to exist.
    #[serde(default)]
    pub users: Vec<DbUserConfig>,
    /// Per-customer storage quotas in MiB (`[customer, MiB]`); a customer not
    /// listed is unlimited.
    #[serde(default)]
    pub quotas: Vec<(String, u64)>,
    /// Days a dropped database's dump stays in the trash; 0 means the default (7).
    #[serde(default)]
    pub trash_days: u32,
}

/// One database on a db server.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct DbConfig {
    /// Name on the server.
    pub name: String,
    /// `mariadb` or `postgres`.
    pub engine: DbEngine,
    /// The owning customer's account name (for quotas and reports).
    #[serde(default)]
    pub owner: String,
    /// When the database does not exist: restore it from this trash entry (a name
    /// the engine reported) instead of creating it empty.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub restore_from: Option<String>,
}

/// One database login on a db server.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct DbUserConfig {
    /// Login name.
    pub name: String,
    /// `mariadb` or `postgres`.
    pub engine: DbEngine,
    /// Engine-native password verifier (never the password).
    pub password_verifier: String,
    /// Names of the databases it has all privileges on.
    #[serde(default)]
    pub databases: Vec<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn role_config_is_internally_tagged() {
        let cfg = DesiredConfig {
            format: CONFIG_FORMAT,
            revision: 7,
            server: ServerIdentity {
                name: "web-1".into(),
                role: "web".into(),
                cluster: "web-eu".into(),
                rank: 0,
                addresses: vec!["127.0.0.11".into()],
                hostname: "web-1.hosting.example".into(),
            },
            role: RoleConfig::Web(WebConfig {
                sites: vec![WebSite {
                    docroot: None,
                    hsts: false,
                    php_version: None,
                    php_ini: Default::default(),
                    mail: None,
                    cron: None,
                    domain: "example.com".into(),
                    aliases: vec!["www.example.com".into()],
                    php: true,
                    mode: PlacementMode::Single,
                    active: true,
                    https_redirect: false,
                    tls: None,
                    files_origin: None,
                    local_paths: Vec::new(),
                    quota_mb: 0,
                }]
                .into_iter()
                .map(std::sync::Arc::new)
                .collect(),
                files_origin: None,
                peers: Vec::new(),
                acme_challenges: Vec::new(),
            }),
        };
        let json = serde_json::to_value(&cfg).unwrap();
        assert_eq!(json["role"]["role"], "web");
        assert_eq!(json["role"]["sites"][0]["mode"], "single");
        let back: DesiredConfig = serde_json::from_value(json).unwrap();
        assert_eq!(back, cfg);
        assert_eq!(back.role.role(), "web");

        let mail: RoleConfig = serde_json::from_str(
            r#"{"role":"mail","domains":[{"domain":"example.com","primary":true,
                "mailboxes":["info"],"aliases":[["sales",["info@example.com"]]]}]}"#,
        )
        .unwrap();
        match mail {
            RoleConfig::Mail(m) => assert_eq!(m.domains[0].aliases[0].1[0], "info@example.com"),
            other => panic!("wrong role {other:?}"),
        }
        assert!(serde_json::from_str::<RoleConfig>(r#"{"role":"ftp"}"#).is_err());
    }

    #[test]
    fn requests_reject_unknown_fields_responses_do_not() {
        let hb = r#"{"applied_revision":3,"engines":[{"name":"web","state":"not_built",
            "detail":"x"}],"agent_version":"0.1.0"}"#;
        let parsed: Heartbeat = serde_json::from_str(hb).unwrap();
        assert_eq!(parsed.engines[0].state, EngineState::NotBuilt);
        assert!(serde_json::from_str::<Heartbeat>(
            r#"{"applied_revision":3,"engines":[],"agent_version":"x","extra":1}"#
        )
        .is_err());
        assert!(serde_json::from_str::<ConfigQuery>(r#"{"after":1,"wait":2}"#).is_err());
        let q = |after, delta, resync| ConfigQuery {
            after,
            delta,
            resync,
        };
        assert_eq!(q(0, 0, 0).to_query_string(), "after=0");
        assert_eq!(q(7, 1, 0).to_query_string(), "after=7&delta=1");
        assert_eq!(q(7, 1, 1).to_query_string(), "after=7&delta=1&resync=1");
        let ack: HeartbeatAck =
            serde_json::from_str(r#"{"server_time":"2024-01-01T00:00:00Z","new":1}"#).unwrap();
        assert_eq!(ack.server_time, "2024-01-01T00:00:00Z");
    }
}
