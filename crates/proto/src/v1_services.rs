//! REST bodies of a domain's services: mailboxes and aliases, the mail queue,
//! databases and their users, FTP accounts, DNS records; re-exported from
//! [`crate::v1`].

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

// ---------------------------------------------------------------- mail

/// `POST /v1/mailboxes`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateMailbox {
    /// Full address, e.g. `info@example.com`; the domain must be the caller's.
    pub address: String,
    /// Password (10+ characters); generated and returned once when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password: Option<String>,
    /// Quota in MiB, 0 = unlimited (default 1024).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quota_mb: Option<u64>,
    /// Display name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub display_name: Option<String>,
}

/// `PATCH /v1/mailboxes/{address}`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateMailbox {
    /// New password.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password: Option<String>,
    /// New quota.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quota_mb: Option<u64>,
    /// New display name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub display_name: Option<String>,
    /// Enable or disable logins.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enabled: Option<bool>,
}

/// A mailbox.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct MailboxView {
    /// Address.
    pub address: String,
    /// Domain.
    pub domain: String,
    /// Owning customer.
    pub customer: String,
    /// Quota MiB (0 = unlimited).
    pub quota_mb: u64,
    /// Display name.
    pub display_name: String,
    /// Logins allowed.
    pub enabled: bool,
    /// RFC 3339.
    pub created_at: String,
}

/// A created object plus a generated password, shown once.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct WithPassword<T> {
    /// The object.
    #[serde(flatten)]
    pub object: T,
    /// Generated password, present only when the request gave none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub generated_password: Option<String>,
}

/// `POST /v1/aliases`: an address that forwards.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateAlias {
    /// Address, e.g. `sales@example.com`.
    pub address: String,
    /// Destinations (local mailboxes or external addresses), 1–100.
    pub destinations: Vec<String>,
}

/// `PATCH /v1/aliases/{address}`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateAlias {
    /// New destinations (replaces).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub destinations: Option<Vec<String>>,
}

/// An alias or forward.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct AliasView {
    /// Address.
    pub address: String,
    /// Domain.
    pub domain: String,
    /// Owning customer.
    pub customer: String,
    /// Destinations.
    pub destinations: Vec<String>,
    /// RFC 3339.
    pub created_at: String,
}

// ---------------------------------------------------------------- databases

/// `POST /v1/databases`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateDatabase {
    /// Name: `[a-z][a-z0-9_]*`, at most 32.
    pub name: String,
    /// `mariadb` or `postgres`.
    pub engine: String,
    /// Owning customer (admins and resellers).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub customer: Option<String>,
    /// db cluster (default: the customer's, then the operator's default).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cluster: Option<String>,
    /// Domain to link it to (the customer's own).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub domain: Option<String>,
    /// Restore this trash entry (see `GET /v1/db-trash`) into the new
    /// database instead of creating it empty; engine and cluster must match the
    /// entry's, and only the customer who owned the dropped database may use it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub restore_from: Option<String>,
}

/// A dump of a dropped database, kept in its db server's trash.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct DbTrashView {
    /// Entry name (what `restore_from` takes).
    pub name: String,
    /// The database it was.
    pub database: String,
    /// Engine.
    pub engine: String,
    /// Owning customer.
    pub customer: String,
    /// db cluster.
    pub cluster: String,
    /// The db server holding it.
    pub server: String,
    /// When it was dropped (RFC 3339).
    pub dropped_at: String,
    /// Compressed size, bytes.
    pub size_bytes: u64,
}

/// One mail server's queue.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct MailQueueView {
    /// Server name.
    pub server: String,
    /// Whether the server's last report is known (it may be down).
    pub reported: bool,
    /// Queued messages.
    pub messages: Vec<QueuedMailView>,
}

/// One queued message.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct QueuedMailView {
    /// Queue id.
    pub id: String,
    /// Envelope sender.
    pub from: String,
    /// Recipients not yet delivered.
    pub to: Vec<String>,
    /// Size, bytes.
    pub size: u64,
    /// Attempts so far.
    pub attempts: u32,
    /// Queued at (RFC 3339).
    pub queued_at: String,
    /// Next attempt (RFC 3339).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_attempt: Option<String>,
    /// Last error.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
}

/// `PATCH /v1/databases/{name}`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateDatabase {
    /// Link to a domain; an empty string unlinks.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub domain: Option<String>,
}

/// A database.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct DatabaseView {
    /// Name.
    pub name: String,
    /// Engine.
    pub engine: String,
    /// Owning customer.
    pub customer: String,
    /// db cluster.
    pub cluster: String,
    /// Linked domain.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub domain: Option<String>,
    /// Size reported by the db server, bytes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub size_bytes: Option<u64>,
    /// RFC 3339.
    pub created_at: String,
}

/// `POST /v1/db-users`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateDbUser {
    /// Login name: `[a-z][a-z0-9_]*`, at most 32.
    pub name: String,
    /// `mariadb` or `postgres`; when absent, that of the granted databases
    /// (required when none is granted).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub engine: Option<String>,
    /// Owning customer (admins and resellers).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub customer: Option<String>,
    /// db cluster (default: that of its first database, else the default).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cluster: Option<String>,
    /// Password; generated and returned once when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password: Option<String>,
    /// Databases to grant (the same customer's, same engine and cluster).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub databases: Option<Vec<String>>,
}

/// `PATCH /v1/db-users/{name}`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateDbUser {
    /// New password.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password: Option<String>,
    /// New grant list (replaces).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub databases: Option<Vec<String>>,
}

/// A database user.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct DbUserView {
    /// Name.
    pub name: String,
    /// Engine.
    pub engine: String,
    /// Owning customer.
    pub customer: String,
    /// db cluster.
    pub cluster: String,
    /// Granted databases.
    pub databases: Vec<String>,
    /// RFC 3339.
    pub created_at: String,
}

// ---------------------------------------------------------------- ftp

/// `POST /v1/ftp-accounts`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateFtpAccount {
    /// Login name.
    pub username: String,
    /// Domain whose site files it reaches.
    pub domain: String,
    /// Password; generated and returned once when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password: Option<String>,
    /// Folder inside the site files (default: the site root).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub home: Option<String>,
    /// Quota MiB, 0 = unlimited (default 0).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quota_mb: Option<u64>,
}

/// `PATCH /v1/ftp-accounts/{username}`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateFtpAccount {
    /// New password.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password: Option<String>,
    /// New home folder.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub home: Option<String>,
    /// New quota.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quota_mb: Option<u64>,
}

/// An FTP account.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct FtpAccountView {
    /// Login name.
    pub username: String,
    /// Domain.
    pub domain: String,
    /// Owning customer.
    pub customer: String,
    /// Home folder inside the site files ("" = root).
    pub home: String,
    /// Quota MiB.
    pub quota_mb: u64,
    /// RFC 3339.
    pub created_at: String,
}

// ---------------------------------------------------------------- dns records

/// `POST /v1/dns-records`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateDnsRecord {
    /// The zone (domain name).
    pub domain: String,
    /// Owner name relative to the domain: `@`, `www`, `_sip._tcp`, `*.dev`.
    pub name: String,
    /// TTL seconds (30–604800); the cluster default when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ttl: Option<u32>,
    /// Typed data, e.g. `{"type":"MX","preference":10,"exchange":"mx.example.net"}`.
    /// Types: A{address}, AAAA{address}, CNAME{target}, MX{preference,exchange},
    /// TXT{text}, SRV{priority,weight,port,target}, CAA{flags,tag,value}, NS{target}.
    #[schema(value_type = Object)]
    pub data: serde_json::Value,
}

/// `PATCH /v1/dns-records/{id}`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateDnsRecord {
    /// New owner name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// New TTL; `0` returns to the cluster default.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ttl: Option<u32>,
    /// New data.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub data: Option<serde_json::Value>,
}

/// A customer DNS record.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct DnsRecordView {
    /// Id (path key).
    pub id: i64,
    /// Zone.
    pub domain: String,
    /// Relative owner name.
    pub name: String,
    /// TTL, if set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ttl: Option<u32>,
    /// Record type.
    #[serde(rename = "type")]
    pub rtype: String,
    /// Typed data as given (with `type`).
    #[schema(value_type = Object)]
    pub data: serde_json::Value,
    /// RFC 3339.
    pub created_at: String,
}
