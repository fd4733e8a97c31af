//! Persisted shapes of every stored object (version 1). The store keeps each object
//! as JSON of one of these structs plus metadata columns (id, kind, name, owner,
//! parent, revisions, times). Add fields only with `#[serde(default)]`; a change
//! that is not backward compatible needs a new version and a migration.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::net::IpAddr;

use crate::dns::{RecordData, RecordName};
use crate::limits::{LimitOverrides, Limits};
use crate::{
    AccountKind, CountryCode, DbEngine, DbIdent, DomainName, EmailAddress, FtpUsername, Id,
    LocalPart, PlacementMode, RelPath, Role, Slug,
};

/// Kinds of stored objects. The string form is the store's `kind` column.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    /// [`Account`]
    Account,
    /// [`ApiToken`]
    Token,
    /// [`Cluster`]
    Cluster,
    /// [`Server`]
    Server,
    /// [`Domain`]
    Domain,
    /// [`Site`]
    Site,
    /// [`Mailbox`]
    Mailbox,
    /// [`MailAlias`]
    MailAlias,
    /// [`Database`]
    Database,
    /// [`DbUser`]
    DbUser,
    /// [`FtpAccount`]
    FtpAccount,
    /// [`DnsRecord`]
    DnsRecord,
    /// [`JoinToken`]
    JoinToken,
    /// [`Secret`]
    Secret,
    /// [`Plan`]
    Plan,
}

impl Kind {
    /// The store's and the audit log's spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Account => "account",
            Kind::Token => "token",
            Kind::Cluster => "cluster",
            Kind::Server => "server",
            Kind::Domain => "domain",
            Kind::Site => "site",
            Kind::Mailbox => "mailbox",
            Kind::MailAlias => "mail_alias",
            Kind::Database => "database",
            Kind::DbUser => "db_user",
            Kind::FtpAccount => "ftp_account",
            Kind::DnsRecord => "dns_record",
            Kind::JoinToken => "join_token",
            Kind::Secret => "secret",
            Kind::Plan => "plan",
        }
    }

    /// Parse the store's spelling.
    pub fn parse(s: &str) -> Option<Kind> {
        [
            Kind::Account,
            Kind::Token,
            Kind::Cluster,
            Kind::Server,
            Kind::Domain,
            Kind::Site,
            Kind::Mailbox,
            Kind::MailAlias,
            Kind::Database,
            Kind::DbUser,
            Kind::FtpAccount,
            Kind::DnsRecord,
            Kind::JoinToken,
            Kind::Secret,
            Kind::Plan,
        ]
        .into_iter()
        .find(|k| k.as_str() == s)
    }
}

/// Implemented by every persisted object type: which kind it is stored as.
pub trait Object: Serialize + for<'de> Deserialize<'de> + Clone + Send + Sync + 'static {
    /// The store kind.
    const KIND: Kind;

    /// The extra unique keys (beyond kind and name) an object stored under `name`
    /// claims. The store derives them on every create and update, so no caller can
    /// forget or mistype one; most kinds claim none.
    fn unique_keys(&self, name: &str) -> Vec<UniqueKey> {
        let _ = name;
        Vec::new()
    }
}

/// An additional unique key an object claims, beyond (kind, name). For example
/// mailboxes and aliases both claim `("mail_address", "info@a.com")`, so one
/// address is never both; a site claims one `("hostname", ...)` per host name.
/// The namespaces and key formats are stored: changing them breaks existing stores.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct UniqueKey {
    /// Namespace.
    pub ns: &'static str,
    /// The key within it.
    pub key: String,
}

/// Namespace of the host names sites serve (primary name and aliases).
pub const HOSTNAME_NS: &str = "hostname";

/// Namespace of mail addresses, shared by mailboxes and aliases.
pub const MAIL_ADDRESS_NS: &str = "mail_address";

macro_rules! object {
    ($t:ident, $k:ident) => {
        impl Object for $t {
            const KIND: Kind = Kind::$k;
        }
    };
    ($t:ident, $k:ident, $keys:expr) => {
        impl Object for $t {
            const KIND: Kind = Kind::$k;

            fn unique_keys(&self, name: &str) -> Vec<UniqueKey> {
                let keys: fn(&$t, &str) -> Vec<UniqueKey> = $keys;
                keys(self, name)
            }
        }
    };
}

/// The one `mail_address` key of a mailbox or alias stored under its address.
fn mail_address_key(name: &str) -> Vec<UniqueKey> {
    vec![UniqueKey {
        ns: MAIL_ADDRESS_NS,
        key: name.to_owned(),
    }]
}

/// An admin, reseller or customer account. Customers own domains and everything
/// below them; a reseller owns the customers it created.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Account {
    /// Login and reference name.
    pub name: Slug,
    /// Rights.
    pub kind: AccountKind,
    /// Name for people.
    #[serde(default)]
    pub display_name: String,
    /// Contact address.
    #[serde(default)]
    pub email: Option<EmailAddress>,
    /// The reseller that manages this customer, if any.
    #[serde(default)]
    pub reseller: Option<Id>,
    /// Cluster per role used when this customer adds a domain without choosing.
    #[serde(default)]
    pub default_clusters: BTreeMap<Role, Id>,
    /// argon2id PHC string of the panel/API login password, if one is set.
    #[serde(default)]
    pub password_hash: Option<String>,
    /// A disabled account cannot log in and its tokens are refused.
    #[serde(default)]
    pub disabled: bool,
    /// Storage quota (MiB) for all of the customer's databases on a db server: at
    /// 90% the db server warns, above 100% it stops writes until usage is back
    /// under. `None`: unlimited. Set by admins and resellers, never by the customer.
    #[serde(default)]
    pub db_quota_mb: Option<u64>,
    /// The [`Plan`] whose limits apply; `None`: the controller's default plan.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub plan: Option<Id>,
    /// Per-account exceptions to the plan's limits.
    #[serde(default, skip_serializing_if = "LimitOverrides::is_empty")]
    pub limits: LimitOverrides,
    /// Resellers: may choose clusters for their customers' domains and databases
    /// (set by admins). Customers never choose clusters.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub may_choose_clusters: bool,
}
object!(Account, Account);

impl Account {
    /// The customer's default clusters for the domain roles only: what placing a new
    /// domain without explicit clusters starts from (API domain create and import
    /// use the same answer).
    pub fn domain_role_defaults(&self) -> BTreeMap<Role, Id> {
        self.default_clusters
            .iter()
            .filter(|(r, _)| Role::DOMAIN_ROLES.contains(r))
            .map(|(r, c)| (*r, *c))
            .collect()
    }
}

/// A named set of limits that admins (owner `None`) and resellers (owner: the
/// reseller) give accounts. A reseller's plans never exceed its own limits.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Plan {
    /// Reference name.
    pub name: Slug,
    /// Free text for people.
    #[serde(default)]
    pub description: String,
    /// The limits.
    pub limits: Limits,
}
object!(Plan, Plan);

/// An API token. The secret is shown once at creation and stored only as an argon2id
/// hash; `public_id` finds the row without revealing anything.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ApiToken {
    /// Account the token acts as.
    pub account: Id,
    /// Label chosen by the user, e.g. `laptop`.
    pub name: String,
    /// Random identifier embedded in the token string.
    pub public_id: String,
    /// argon2id PHC string of the secret part.
    pub secret_hash: String,
    /// Unix time after which the token is refused.
    #[serde(default)]
    pub expires_at: Option<i64>,
    /// For an impersonation token: the reseller or admin account that acts as
    /// `account` with it (both names go into the audit log).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub impersonator: Option<Id>,
}
object!(ApiToken, Token);

/// DNS time-to-live settings of a cluster's zones.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ttls {
    /// TTL of the web records (`@`, `www`): short so failover reaches resolvers fast.
    pub web: u32,
    /// TTL of every other generated record.
    pub default: u32,
}

impl Default for Ttls {
    fn default() -> Self {
        Self {
            web: 60,
            default: 3600,
        }
    }
}

/// A named group of servers of one role.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Cluster {
    /// Reference name, e.g. `web-eu`.
    pub name: Slug,
    /// Role of every server in it.
    pub role: Role,
    /// Free text for operators.
    #[serde(default)]
    pub description: String,
    /// Used for new domains when neither the request nor the customer names one.
    #[serde(default)]
    pub is_default: bool,
    /// TTLs for zones built from this cluster's servers.
    #[serde(default)]
    pub ttls: Ttls,
    /// DNS clusters: extra secondaries outside hostplane (e.g. a BIND or Knot run
    /// by a partner), as `ip` or `ip:port`: notified on every change and allowed to
    /// transfer the cluster's zones.
    #[serde(default)]
    pub external_secondaries: Vec<std::net::SocketAddr>,
    /// Mail clusters: which server writes the cluster's mailboxes now (issue 16),
    /// decided by the controller's placement path (`scheduler::mail`); `None`
    /// until the first pass (and on other roles).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mail_writer: Option<MailWriterState>,
    /// Mail clusters: the client-facing host name (issue 16), e.g.
    /// `mail.hosting.example`. Mail clients are sent to `imap.`, `pop.` and
    /// `smtp.` of it ([`Cluster::mail_client_names`]), which the zone holding them
    /// publishes at the current writer's addresses and every server's certificate
    /// covers, so clients keep one name across a failover. `None`: clients are
    /// sent to the writer's own host name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hostname: Option<DomainName>,
}
object!(Cluster, Cluster);

/// The host names mail clients use for one mail cluster (see
/// [`Cluster::hostname`]).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct MailClientNames {
    /// IMAP (993, 143): `imap.<hostname>`.
    pub imap: String,
    /// POP3 (995, 110): `pop.<hostname>`.
    pub pop3: String,
    /// Submission (465, 587): `smtp.<hostname>`.
    pub smtp: String,
}

impl MailClientNames {
    /// The names for the cluster host name `hostname`.
    pub fn of(hostname: &DomainName) -> Self {
        let h = hostname.as_str();
        Self {
            imap: format!("imap.{h}"),
            pop3: format!("pop.{h}"),
            smtp: format!("smtp.{h}"),
        }
    }

    /// The three names, IMAP, POP3, submission.
    pub fn all(&self) -> [&str; 3] {
        [&self.imap, &self.pop3, &self.smtp]
    }
}

impl Cluster {
    /// The client-facing names of a mail cluster with a host name.
    pub fn mail_client_names(&self) -> Option<MailClientNames> {
        (self.role == Role::Mail)
            .then_some(self.hostname.as_ref())
            .flatten()
            .map(MailClientNames::of)
    }
}

/// The writer of a mail cluster's mailboxes as the store keeps it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct MailWriterState {
    /// The writing server (None: no usable server; one is chosen when usable).
    #[serde(default)]
    pub holder: Option<Id>,
    /// Fencing epoch: raised by one on every change of holder, never lowered
    /// (stored, so it survives a controller restart); replicas refuse a stream of
    /// a lower epoch than the highest they have seen.
    #[serde(default)]
    pub epoch: u64,
    /// Unix seconds before which the holder must not accept writes: when the
    /// holder changed, the previous holder's last possible lease end plus a clock
    /// margin (0: at once).
    #[serde(default)]
    pub not_before: i64,
    /// The holder before the last move: once its mail report shows it follows
    /// this epoch (so it writes no more), `not_before` is brought forward to then.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub previous: Option<Id>,
}

/// One machine (or one `up` process) with one role in one cluster.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Server {
    /// Reference name, e.g. `web-1`.
    pub name: Slug,
    /// Same as its cluster's role.
    pub role: Role,
    /// Its cluster.
    pub cluster: Id,
    /// In DNS and mail clusters: 0 is the primary, 1.. the secondaries in order.
    #[serde(default)]
    pub rank: u16,
    /// Public host name, e.g. `ns1.hosting.example`.
    pub hostname: DomainName,
    /// Public addresses that records and clients use.
    pub addresses: Vec<IpAddr>,
    /// Free-form region, e.g. `eu-west`.
    #[serde(default)]
    pub region: String,
    /// Country, to keep secondaries away from primaries.
    pub country: CountryCode,
    /// Notes on the hardware profile (disks, RAID, memory).
    #[serde(default)]
    pub hardware: String,
    /// A drained server takes no new work and has its work moved off.
    #[serde(default)]
    pub drained: bool,
    /// The agent identity issued when the server joined (None until an agent joins).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agent: Option<AgentEnrolment>,
}
object!(Server, Server);

/// The client certificate issued to a server's agent at join. Only the certificate
/// with this fingerprint is accepted for the server: a re-join or a reset replaces
/// it, and a deleted server takes it with it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AgentEnrolment {
    /// Unix time of the join.
    pub joined_at: i64,
    /// Lowercase hex SHA-256 of the certificate's DER encoding.
    pub cert_sha256: String,
}

/// A one-time token that lets one agent join a cluster. The secret is shown once
/// and stored only as a BLAKE3 hash (it is 256 random bits, so a fast hash is
/// enough); the token is deleted in the transaction that registers the server.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JoinToken {
    /// The cluster the joining server enters.
    pub cluster: Id,
    /// Random identifier embedded in the token string (also the store name).
    pub public_id: String,
    /// Lowercase hex BLAKE3 hash of the secret part.
    pub secret_hash: String,
    /// Unix time after which the token is refused.
    pub expires_at: i64,
    /// The admin account that created it.
    #[serde(default)]
    pub created_by: Option<Id>,
}
object!(JoinToken, JoinToken);

/// A customer domain and the cluster of each role its services are placed on.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Domain {
    /// The name (A-labels).
    pub name: DomainName,
    /// Owning customer account.
    pub customer: Id,
    /// Cluster id per placed role.
    pub placements: BTreeMap<Role, Id>,
}
object!(Domain, Domain);

/// The web part of a domain.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Site {
    /// The domain (its name is the site's primary host name).
    pub domain: Id,
    /// Further host names served by the site; each inside one of the customer's
    /// domains; a wildcard (`*.example.com`) only under the site's own domain.
    #[serde(default, deserialize_with = "crate::names::de_host_patterns")]
    pub aliases: Vec<DomainName>,
    /// Serve `.php` through PHP-FPM.
    #[serde(default)]
    pub php: bool,
    /// Active on one server or on all servers of the web cluster.
    pub mode: PlacementMode,
    /// Redirect plain HTTP to HTTPS.
    #[serde(default)]
    pub https_redirect: bool,
    /// For `single` sites: the server it is active on (set by the scheduler).
    #[serde(default)]
    pub active_server: Option<Id>,
    /// The content last deployed through the API (`hostplane site upload`).
    #[serde(default)]
    pub deployment: Option<Deployment>,
    /// Earlier deployments whose archives the controller keeps (newest first; with
    /// `deployment`, at most [`KEPT_DEPLOYMENTS`]).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub previous_deployments: Vec<Deployment>,
    /// Kept and local paths, restores, SQLite databases seen (issue 14).
    #[serde(default, skip_serializing_if = "crate::sitefiles::SiteFiles::is_empty")]
    pub files: crate::sitefiles::SiteFiles,
    /// Document root, HSTS, PHP version and `php.ini` values (issue 15).
    #[serde(default, skip_serializing_if = "crate::web::WebSettings::is_default")]
    pub web: crate::web::WebSettings,
    /// Cron jobs (issue 15), in id order; at most the owner's `cron_jobs` limit.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub cron: Vec<crate::cron::CronJob>,
    /// The id the next cron job gets (ids are never reused within a site).
    #[serde(default, skip_serializing_if = "is_zero_u32")]
    pub cron_next_id: u32,
    /// Which web server runs the cron jobs, set by placement only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cron_holder: Option<crate::cron::CronHolder>,
}

fn is_zero_u32(n: &u32) -> bool {
    *n == 0
}

/// How many deployment archives (the current one included) are kept per site.
pub const KEPT_DEPLOYMENTS: usize = 3;
// A site is stored under its domain's name, its primary host name.
object!(Site, Site, |site, name| {
    std::iter::once(name.to_owned())
        .chain(site.aliases.iter().map(ToString::to_string))
        .map(|key| UniqueKey {
            ns: HOSTNAME_NS,
            key,
        })
        .collect()
});

/// A tar archive of a site's content uploaded through the API.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Deployment {
    /// BLAKE3 hash (hex) of the archive: its name in the controller's store.
    pub id: String,
    /// Archive size in bytes.
    pub size: u64,
    /// When it was uploaded (unix seconds).
    pub at: i64,
}

/// A mailbox that stores mail.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Mailbox {
    /// Its domain.
    pub domain: Id,
    /// The part before `@`.
    pub local_part: LocalPart,
    /// argon2id PHC string of the mailbox password.
    pub password_hash: String,
    /// Quota in MiB; 0 means unlimited.
    #[serde(default)]
    pub quota_mb: u64,
    /// Name for the From header and the panel.
    #[serde(default)]
    pub display_name: String,
    /// A disabled mailbox refuses logins but still receives mail.
    #[serde(default)]
    pub enabled: bool,
}
object!(Mailbox, Mailbox, |_, name| mail_address_key(name));

/// An address that forwards to other addresses (local or remote).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MailAlias {
    /// Its domain.
    pub domain: Id,
    /// The part before `@`.
    pub local_part: LocalPart,
    /// Where mail goes.
    pub destinations: Vec<EmailAddress>,
}
object!(MailAlias, MailAlias, |_, name| mail_address_key(name));

/// A customer database on a db cluster.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Database {
    /// Owning customer.
    pub customer: Id,
    /// Name on the server.
    pub name: DbIdent,
    /// MariaDB or PostgreSQL.
    pub engine: DbEngine,
    /// The db cluster it lives on.
    pub cluster: Id,
    /// The domain it belongs to, if the customer linked one.
    #[serde(default)]
    pub domain: Option<Id>,
    /// Created by restoring this trash entry (a dump the db server kept when an
    /// earlier database was dropped) instead of empty.
    #[serde(default)]
    pub restore_from: Option<String>,
}
object!(Database, Database);

/// A database login with grants on some of its customer's databases.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DbUser {
    /// Owning customer.
    pub customer: Id,
    /// Login name on the server.
    pub name: DbIdent,
    /// Engine of the server it lives on.
    pub engine: DbEngine,
    /// The db cluster it lives on.
    pub cluster: Id,
    /// Engine-native password verifier (MariaDB `*HEX` hash or PostgreSQL SCRAM-SHA-256);
    /// never the password.
    pub password_verifier: String,
    /// Databases it has all privileges on (same customer, same engine and cluster).
    #[serde(default)]
    pub databases: Vec<Id>,
}
object!(DbUser, DbUser);

/// An FTP login whose home is the site's files or a folder in them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FtpAccount {
    /// The domain whose site files it reaches.
    pub domain: Id,
    /// Login name.
    pub username: FtpUsername,
    /// argon2id PHC string.
    pub password_hash: String,
    /// Folder inside the site's files; empty for the site root.
    #[serde(default = "RelPath::root")]
    pub home: RelPath,
    /// Upload quota in MiB; 0 means unlimited.
    #[serde(default)]
    pub quota_mb: u64,
}
object!(FtpAccount, FtpAccount);

/// A customer's own DNS record in a domain's zone.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DnsRecord {
    /// The zone.
    pub domain: Id,
    /// Owner name relative to the zone.
    pub name: RecordName,
    /// TTL in seconds; the cluster default when absent.
    #[serde(default)]
    pub ttl: Option<u32>,
    /// Typed record data.
    pub data: RecordData,
}
object!(DnsRecord, DnsRecord);

/// Shortest and longest TTL a customer may set.
pub const TTL_RANGE: std::ops::RangeInclusive<u32> = 30..=604_800;

/// What a [`Secret`] is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SecretPurpose {
    /// A site's TLS certificate and key (subject: the site's domain).
    SiteCert,
    /// A server's TLS certificate and key for its public services: FTPS, SMTP
    /// STARTTLS, POP3S, the site-file hub (subject: the server name).
    ServerCert,
    /// A domain's DKIM signing key (subject: the domain).
    Dkim,
    /// A domain's RSA-2048 DKIM signing key, signing beside the Ed25519 one for
    /// receivers that verify RSA only (RFC 8463 section 5; subject: the domain).
    DkimRsa,
    /// A DNS cluster's TSIG key for zone transfers (subject: the cluster name).
    Tsig,
    /// The TSIG key a rotation replaced, still accepted until `not_after`
    /// (subject: the cluster name; `private` the old secret).
    TsigPrevious,
    /// A pre-generated RSA-2048 DKIM key nobody signs with yet (subject: a random
    /// label): the controller keeps a few, made at idle priority, so a new account's
    /// domains get their RSA key at once instead of after seconds of key generation.
    DkimRsaSpare,
    /// A site's submission secret for its PHP mail (subject: the domain; only
    /// while the domain has a site and a mail placement): `private` the secret
    /// (web servers get it), `public` its argon2id hash (mail servers get that).
    SiteMail,
    /// The platform's ACME account (subject: `platform`): `private` the
    /// account credentials JSON (key included), `public` the account URL; and
    /// (subject: `queue`) the account's recent orders, failed validations and
    /// issued certificates the CA's rate limits count (`public` JSON, no private
    /// half; `controller::acme::queue`).
    AcmeAccount,
    /// A site's ACME state (subject: the domain): `public` its JSON (order status,
    /// last attempt and error, issuer, expiry, backoff; `controller::acme`), no
    /// private half.
    AcmeSite,
    /// A pending HTTP-01 challenge of a site (subject: the domain): `public` the
    /// JSON list of tokens and key authorizations every web server of the site
    /// answers under `/.well-known/acme-challenge/`; deleted once validated.
    AcmeChallenge,
    /// Which controller issues ACME certificates (subject: `issuer`): `public` the
    /// holder, `not_after` the end of its lease.
    AcmeLease,
    /// An account's TOTP two-factor secret (subject: the account name): `private`
    /// the base32 secret, `public` the JSON state (confirmed, last step used,
    /// argon2id hashes of the unused recovery codes; `controller::totp`). No
    /// server carries it.
    Totp,
}

impl SecretPurpose {
    /// The prefix of the store name `<purpose>:<subject>`.
    pub fn as_str(self) -> &'static str {
        match self {
            SecretPurpose::SiteCert => "site_cert",
            SecretPurpose::ServerCert => "server_cert",
            SecretPurpose::Dkim => "dkim",
            SecretPurpose::DkimRsa => "dkim_rsa",
            SecretPurpose::Tsig => "tsig",
            SecretPurpose::TsigPrevious => "tsig_previous",
            SecretPurpose::DkimRsaSpare => "dkim_rsa_spare",
            SecretPurpose::SiteMail => "site_mail",
            SecretPurpose::AcmeAccount => "acme_account",
            SecretPurpose::AcmeSite => "acme_site",
            SecretPurpose::AcmeChallenge => "acme_challenge",
            SecretPurpose::AcmeLease => "acme_lease",
            SecretPurpose::Totp => "totp",
        }
    }

    /// The store name of the secret of `subject`.
    pub fn store_name(self, subject: &str) -> String {
        format!("{}:{subject}", self.as_str())
    }
}

/// Key material the controller keeps and hands to the servers that need it in their
/// desired config (never through the customer API): certificates with their keys,
/// DKIM keys, TSIG keys. Stored under the name `<purpose>:<subject>`.
#[derive(Clone, PartialEq, Serialize, Deserialize)]
pub struct Secret {
    /// What it is for.
    pub purpose: SecretPurpose,
    /// Whom it is for: a domain, a server or a cluster name.
    pub subject: String,
    /// The public half: certificate chain PEM, DKIM public key (base64 for the TXT
    /// record), or the TSIG key name.
    pub public: String,
    /// The private half: key PEM or the TSIG secret (base64).
    pub private: String,
    /// Algorithm: `ecdsa-p256`, `rsa`, `ed25519`, `hmac-sha256` ...
    pub algorithm: String,
    /// Expiry (unix seconds) of a certificate, so it is renewed in time.
    #[serde(default)]
    pub not_after: Option<i64>,
    /// Uploaded by the customer (never replaced automatically) rather than issued.
    #[serde(default)]
    pub uploaded: bool,
    /// The names a certificate was issued for (domain and aliases, or host name and
    /// addresses), so a change of names re-issues it.
    #[serde(default)]
    pub names: Vec<String>,
}
object!(Secret, Secret);

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Secret")
            .field("purpose", &self.purpose)
            .field("subject", &self.subject)
            .field("algorithm", &self.algorithm)
            .field("not_after", &self.not_after)
            .field("uploaded", &self.uploaded)
            .finish_non_exhaustive()
    }
}
