//! The agent's heartbeat (`POST /v1/agent/heartbeat`) and what it carries: engine
//! health, objects not applied, the engines' reports (files, db, mail) and the
//! controller's acknowledgement; re-exported from [`crate::agent_v1`].

use model::DbEngine;
use serde::{Deserialize, Serialize};

// ---------------------------------------------------------------- heartbeat

/// `POST /v1/agent/heartbeat`: the agent's status, sent every second.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Heartbeat {
    /// Revision of the desired config the role engine last applied successfully
    /// (0 before the first).
    pub applied_revision: i64,
    /// Health of each engine the agent runs.
    pub engines: Vec<EngineHealth>,
    /// The agent's version (`CARGO_PKG_VERSION`).
    pub agent_version: String,
    /// TCP port of the role's service the controller probes when heartbeats stop
    /// (e.g. 10080 when an unprivileged web engine cannot bind 80); absent means the
    /// controller's configured port for the role.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub probe_port: Option<u16>,
    /// What the role engine reports beyond health (database sizes, the mail
    /// queue ...): sent when it changed and every 30 s, absent in between (the
    /// controller keeps the last one).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub report: Option<RoleReport>,
    /// Objects of the desired config the role engine could not apply (it keeps
    /// their last applied version, or leaves them absent when new) while it applied
    /// every other object; empty when everything applied.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub rejected: Vec<RejectedObject>,
}

/// One object of a desired config a role engine could not apply.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RejectedObject {
    /// What it is, kind then name: `mailbox a/b@example.com`, `zone example.com`,
    /// `site example.com`, `ftp account bob`, `database shop`.
    pub object: String,
    /// Why it was not applied.
    pub reason: String,
}

impl RejectedObject {
    /// An object named `object` not applied because of `reason`.
    pub fn new(object: impl Into<String>, reason: impl std::fmt::Display) -> Self {
        Self {
            object: object.into(),
            reason: reason.to_string(),
        }
    }
}

/// A role engine's report to the controller, tagged by `"role"`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(tag = "role", rename_all = "lowercase")]
pub enum RoleReport {
    /// A database server's databases and trash.
    Db(DbReport),
    /// A mail server's queue.
    Mail(MailReport),
    /// A files server's sites (usage, conflicts) and restore results.
    Files(FilesReport),
    /// A web server's PHP versions.
    Web(WebReport),
}

/// What a web server reports: the PHP versions it can run a site's pool with, and
/// the site mail waiting in its spool for another attempt.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct WebReport {
    /// Every php-fpm found (Debian: `/usr/sbin/php-fpmX.Y`), lowest version first.
    #[serde(default)]
    pub php: Vec<PhpInstalled>,
    /// Sites whose `mail()` messages wait for a retry (the mail cluster did not
    /// take them yet), so `site show` can say why a customer's mail is late.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub mail_spool: Vec<SiteMailSpool>,
}

/// One site's mail waiting on a web server.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct SiteMailSpool {
    /// The site (its domain).
    pub domain: String,
    /// Messages waiting for another attempt.
    pub messages: u32,
    /// Unix seconds when the oldest of them was sent by PHP.
    pub oldest: u64,
    /// Why the last attempt did not deliver (the mail server's reply or the
    /// connection error).
    pub last_error: String,
}

/// One PHP version installed on a web server.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct PhpInstalled {
    /// `MAJOR.MINOR`, what a site chooses (`8.2`).
    pub version: String,
    /// What `php-fpmX.Y -v` says (`8.2.28`), when it answered.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub full: Option<String>,
    /// The one a site without a chosen version runs.
    #[serde(default)]
    pub default: bool,
}

/// What a files server reports.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct FilesReport {
    /// Every site held, with its usage and replication state.
    #[serde(default)]
    pub sites: Vec<FilesSiteStatus>,
    /// Results of the restores of [`FilesConfig::restores`] (kept while the request is).
    #[serde(default)]
    pub restores: Vec<FileRestoreResult>,
}

/// One site on its files server.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct FilesSiteStatus {
    /// The site's domain.
    pub domain: String,
    /// Bytes of the site's tree.
    pub usage_bytes: u64,
    /// Files in the tree.
    pub files: u64,
    /// The hub's log position (changes ordered so far).
    #[serde(default)]
    pub seq: u64,
    /// Losing versions kept in the conflicts area (newest first, at most 100).
    #[serde(default)]
    pub conflicts: Vec<crate::sitesync::ConflictRecord>,
    /// SQLite databases found in the tree (relative paths, at most 20): they only
    /// work correctly in `single` sites.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub sqlite_paths: Vec<String>,
}

/// How one restore request ended.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct FileRestoreResult {
    /// The request's id.
    pub id: String,
    /// Whether the path was brought back.
    pub ok: bool,
    /// What happened (the version restored, or why not).
    pub message: String,
}

/// What a database server reports.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct DbReport {
    /// Every database hostplane manages there, with its size.
    #[serde(default)]
    pub databases: Vec<DbStatus>,
    /// Dumps of dropped databases that can be restored.
    #[serde(default)]
    pub trash: Vec<DbTrashEntry>,
    /// Customers over (or near) their quota, with a human-readable note.
    #[serde(default)]
    pub quota_notes: Vec<(String, String)>,
}

/// One database's status.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct DbStatus {
    /// Name.
    pub name: String,
    /// `mariadb` or `postgres`.
    pub engine: DbEngine,
    /// Size on disk in bytes.
    pub size_bytes: u64,
    /// Owning customer (account name).
    #[serde(default)]
    pub owner: String,
    /// Writes are stopped because the owner is over quota.
    #[serde(default)]
    pub read_only: bool,
}

/// One dump in a database server's trash.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct DbTrashEntry {
    /// The entry name to restore from ([`DbConfig::restore_from`]).
    pub name: String,
    /// The database it was.
    pub database: String,
    /// `mariadb` or `postgres`.
    pub engine: DbEngine,
    /// Its owner (account name), so only that customer may restore it.
    #[serde(default)]
    pub owner: String,
    /// When it was dropped (RFC 3339).
    pub dropped_at: String,
    /// Compressed dump size in bytes.
    pub size_bytes: u64,
}

/// What a mail server reports.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct MailReport {
    /// Messages waiting for delivery (to the primary, or outbound).
    #[serde(default)]
    pub queue: Vec<QueuedMail>,
    /// Mailboxes whose submissions the outgoing limits refused since the engine
    /// started (the controller records an event when a count grows).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub limited: Vec<LimitedSender>,
    /// Mailbox replication (issue 16): the writer epoch
    /// ([`crate::agent_v1::MailWriter::epoch`]) whose stream this server has
    /// applied up to the writer's end — it holds every change the writer made so
    /// far. `None`: not caught up (or not replicating). The writer itself reports
    /// its own epoch. The controller hands the lease back to a better-ranked
    /// server (the primary, returned) only once it reports the current epoch here.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub caught_up_epoch: Option<u64>,
}

/// A mailbox the outgoing limits refused messages from.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct LimitedSender {
    /// The authenticated mailbox.
    pub mailbox: String,
    /// Messages refused since the engine started.
    pub refused: u64,
}

/// One queued message.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct QueuedMail {
    /// Queue id.
    pub id: String,
    /// Envelope sender (empty for bounces).
    pub from: String,
    /// Envelope recipients not yet delivered.
    pub to: Vec<String>,
    /// Size in bytes.
    pub size: u64,
    /// Delivery attempts so far.
    pub attempts: u32,
    /// When it was queued (RFC 3339).
    pub queued_at: String,
    /// Next attempt (RFC 3339), if scheduled.
    #[serde(default)]
    pub next_attempt: Option<String>,
    /// Why the last attempt failed.
    #[serde(default)]
    pub last_error: Option<String>,
}

/// Health of one role engine.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EngineHealth {
    /// Engine name, e.g. `web`.
    pub name: String,
    /// Its state.
    pub state: EngineState,
    /// Human-readable detail (why it is degraded, what it serves).
    pub detail: String,
}

/// State of a role engine.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EngineState {
    /// Serving its desired config.
    Ok,
    /// Serving, but not everything (e.g. the last apply failed; the previous config
    /// is still served).
    Degraded,
    /// Not serving.
    Failed,
    /// The role's engine does not exist yet in this build.
    NotBuilt,
}

impl EngineState {
    /// The wire spelling: `ok`, `degraded`, `failed`, `not_built`.
    pub fn as_str(self) -> &'static str {
        match self {
            EngineState::Ok => "ok",
            EngineState::Degraded => "degraded",
            EngineState::Failed => "failed",
            EngineState::NotBuilt => "not_built",
        }
    }
}

/// Answer to a [`Heartbeat`].
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct HeartbeatAck {
    /// The controller's clock (RFC 3339), so agents can log clock skew.
    pub server_time: String,
    /// The cron lease: the agent may run the cron jobs its desired config assigns
    /// to it for this many seconds, counted from when it *sent* the heartbeat.
    /// Granted only to a server that applied its current config; absent from
    /// older controllers and when not granted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cron_lease_secs: Option<u64>,
    /// The mail writer lease (issue 16): a mail server its desired config names
    /// the writer of its cluster's mailboxes ([`crate::agent_v1::MailWriter`]) may
    /// accept writes for this many seconds, counted from when it *sent* the
    /// heartbeat. Granted only to that server, once it applied its current config.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mail_lease_secs: Option<u64>,
}
