//! Zone builder: the whole content of one domain's zone from its placements, the
//! health of its web servers and the customer's own records. Pure (no I/O, no
//! clock); [`crate::builder`] calls it once per DNS-placed domain and
//! [`ZoneSerials`] gives each zone a serial that grows with every change.
//!
//! What a zone holds, in order of precedence (a customer record at a name replaces
//! the generated records of the same type at that name; a customer CNAME replaces
//! every generated record at its name; a customer delegation (NS) replaces the
//! generated records at and below its name):
//! - SOA: MNAME the DNS primary's host name, RNAME `hostmaster.<domain>`, refresh
//!   3600, retry 600, expire 1209600, minimum 300;
//! - NS for every server of the DNS cluster, with glue A/AAAA where the server's
//!   host name lies inside the zone (likewise addresses for mail servers whose
//!   host names lie inside it);
//! - A/AAAA at `@` and `www` with the web TTL: the healthy servers where the site
//!   is active (`all`: every healthy, non-drained server of the web cluster;
//!   `single`: the active server). Never empty: when every candidate is down, all
//!   candidates are kept. No site, no web records;
//! - MX 10 to the mail primary, 20, 30 … to the secondaries; `mail` with the
//!   addresses of the mail cluster's writer (the primary unless it failed over;
//!   the RFC 6186 SRV targets follow it too); `ftp` with the files primary's
//!   addresses;
//! - the platform's own host names that lie inside the zone (below its apex):
//!   every server's host name at its addresses, and the client names of a mail
//!   cluster with a host name (`imap.`, `pop.`, `smtp.` of it) at the current
//!   writer's addresses, so they follow a failover ([`ZoneInput::hosts`]); the
//!   zone of a platform domain such as `hosting.example` serves them;
//! - the RFC 6186 SRV records of a mail domain at its mail cluster's client
//!   names (`imap.<hostname>` …) when the cluster has a host name, else at the
//!   writer's own host name;
//! - `v=spf1 mx -all` at `@` unless the customer has an SPF TXT (`v=spf1 …`) there;
//! - `v=DMARC1; p=none` at `_dmarc` unless the customer has a TXT there;
//! - the DKIM public keys (Ed25519 and RSA) at `<selector>._domainkey` when mail is
//!   placed, each unless the customer has a TXT there;
//! - the customer's records, with the DNS cluster's default TTL when they have none.

use std::fmt::Write as _;

use std::net::IpAddr;

use model::entity::{DnsRecord, MailClientNames, Server, Site, Ttls};
use model::{DomainName, Id};
use proto::agent_v1::ZoneContent;
use scheduler::Health;

mod build;
mod serial;

use build::fqdn;
pub use build::{build_zone, RType};
pub use serial::{next_serial, serial_gt, set_serial, ZoneSerials};

/// SOA refresh (seconds).
pub const SOA_REFRESH: u32 = 3600;
/// SOA retry (seconds).
pub const SOA_RETRY: u32 = 600;
/// SOA expire (seconds).
pub const SOA_EXPIRE: u32 = 1_209_600;
/// SOA minimum, the negative-caching TTL (seconds).
pub const SOA_MINIMUM: u32 = 300;
/// The SPF record generated when the customer has none.
pub const DEFAULT_SPF: &str = "v=spf1 mx -all";
/// The DMARC record generated at `_dmarc` when the customer has no TXT there:
/// monitoring only, so receivers that require a DMARC record find one without
/// mail being rejected before the customer chooses a policy.
pub const DEFAULT_DMARC: &str = "v=DMARC1; p=none";

/// One server as the zone builder sees it.
#[derive(Debug, Clone, Copy)]
pub struct ZoneServer<'a> {
    /// Store id (what `Site::active_server` names).
    pub id: Id,
    /// The server.
    pub server: &'a Server,
    /// Its health as the controller believes it.
    pub health: Health,
}

impl ZoneServer<'_> {
    /// Healthy enough to receive visitors: `up`, or `unknown` (no agent reports on
    /// it, so nothing says it is down). `suspect` and `down` are withdrawn.
    fn healthy(&self) -> bool {
        self.health.is_usable()
    }
}

/// Everything one zone is built from.
#[derive(Debug, Clone)]
pub struct ZoneInput<'a> {
    /// The domain (zone apex).
    pub origin: &'a DomainName,
    /// The SOA serial to write.
    pub serial: u32,
    /// The DNS cluster's servers, ranked (primary first).
    pub dns: Vec<ZoneServer<'a>>,
    /// The web cluster's servers (empty when web is not placed).
    pub web: Vec<ZoneServer<'a>>,
    /// The domain's site, if it has one.
    pub site: Option<&'a Site>,
    /// The mail cluster's servers, ranked (primary first; empty when mail is not placed).
    pub mail: Vec<ZoneServer<'a>>,
    /// The server writing the mail cluster's mailboxes (`placement::mail`): the
    /// client-facing names (`mail`, the RFC 6186 SRV targets) follow it. `None`:
    /// the primary's (nobody writes, or mail is not placed).
    pub mail_writer: Option<Id>,
    /// The client-facing names of the domain's mail cluster (`imap.<hostname>`
    /// …; `Cluster::hostname`): the RFC 6186 SRV targets. `None`: the writer's
    /// own host name is.
    pub mail_names: Option<MailClientNames>,
    /// The platform's host names strictly below this zone's apex, with the
    /// addresses they are published at (servers' host names; mail clusters'
    /// client names at their writer's addresses), sorted by name.
    pub hosts: Vec<(String, Vec<IpAddr>)>,
    /// The files cluster's servers, ranked (empty when files is not placed).
    pub files: Vec<ZoneServer<'a>>,
    /// The customer's own records of this zone.
    pub records: Vec<&'a DnsRecord>,
    /// TTLs: `web` for `@`/`www` addresses, `default` for everything else.
    pub ttls: Ttls,
    /// The domain's DKIM keys, `(selector, TXT record text)`, when mail is placed
    /// (Ed25519 and RSA): each published at `<selector>._domainkey` unless the
    /// customer has a TXT there.
    pub dkim: Vec<(&'a str, String)>,
    /// Pending ACME DNS-01 challenges, `(absolute name, TXT value)`: those whose
    /// name lies in this zone are published (`acme::dns01`).
    pub acme_txt: Vec<(String, String)>,
}

/// The zone as a master file (RFC 1035 §5): `$ORIGIN`, then one line per record
/// with absolute owner names.
pub fn to_zone_file(zone: &ZoneContent) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "$ORIGIN {}", fqdn(&zone.origin));
    for r in &zone.records {
        let _ = writeln!(out, "{} {} IN {} {}", fqdn(&r.name), r.ttl, r.rtype, r.data);
    }
    out
}

#[cfg(test)]
mod tests;
