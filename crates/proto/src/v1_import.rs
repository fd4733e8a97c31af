//! `POST /v1/import`: bulk import of NDJSON, one object per line with a `kind`
//! (schema in `docs/import.md`). Lines reuse the REST create bodies' field names,
//! except that passwords come as hashes (`password_hash`) of any scheme the
//! `passhash` crate accepts and owners are named on each line.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// One line of an import file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum ImportLine {
    /// A customer account (like `POST /v1/customers`).
    Customer {
        /// Login name (slug).
        name: String,
        /// Name for people.
        #[serde(default)]
        display_name: Option<String>,
        /// Contact address.
        #[serde(default)]
        email: Option<String>,
        /// The reseller managing it.
        #[serde(default)]
        reseller: Option<String>,
        /// Login password hash (argon2, SHA-crypt, MD5-crypt or bcrypt).
        #[serde(default)]
        password_hash: Option<String>,
        /// The plan whose limits apply.
        #[serde(default)]
        plan: Option<String>,
    },
    /// A domain of a customer, placed like `POST /v1/domains`.
    Domain {
        /// The name (Unicode or A-labels).
        name: String,
        /// Owning customer.
        customer: String,
    },
    /// The site of a domain (like `POST /v1/sites`).
    Site {
        /// The domain.
        domain: String,
        /// More host names inside the customer's domains.
        #[serde(default)]
        aliases: Vec<String>,
        /// Serve PHP.
        #[serde(default)]
        php: bool,
        /// `single` (default) or `all`.
        #[serde(default)]
        mode: Option<String>,
        /// Redirect HTTP to HTTPS.
        #[serde(default)]
        https_redirect: bool,
        /// Paths that survive deployments (like `PATCH /v1/sites/{domain}`'s `keep`).
        #[serde(default)]
        keep: Vec<String>,
        /// Paths each web server keeps to itself (`local`).
        #[serde(default)]
        local: Vec<String>,
        /// The folder served (`public`); absent or `/`: the whole tree.
        #[serde(default)]
        docroot: Option<String>,
        /// Send HSTS (only while the site has a trusted certificate).
        #[serde(default)]
        hsts: bool,
        /// PHP version one of the site's web servers has; absent: their default.
        #[serde(default)]
        php_version: Option<String>,
        /// `php.ini` values (allowed keys and ranges: `docs/web.md`).
        #[serde(default)]
        php_set: BTreeMap<String, String>,
        /// Cron jobs (like `POST /v1/sites/{domain}/cron`, in this order; ids 1, 2, …).
        #[serde(default)]
        cron: Vec<crate::v1_cron::CreateCronJob>,
    },
    /// A mailbox (like `POST /v1/mailboxes`).
    Mailbox {
        /// `local@domain`.
        address: String,
        /// Password hash.
        password_hash: String,
        /// Quota in MiB; absent: the plan's default.
        #[serde(default)]
        quota_mb: Option<u64>,
        /// Name for people.
        #[serde(default)]
        display_name: Option<String>,
    },
    /// An alias or forward (like `POST /v1/aliases`): destinations may be remote.
    Alias {
        /// `local@domain`.
        address: String,
        /// Where mail goes.
        destinations: Vec<String>,
    },
    /// A customer DNS record (like `POST /v1/dns-records`).
    DnsRecord {
        /// The zone.
        domain: String,
        /// Owner name relative to the zone (`@`, `www` ...).
        name: String,
        /// TTL; absent: the cluster default.
        #[serde(default)]
        ttl: Option<u32>,
        /// Typed data as in the API, e.g. `{"type":"TXT","text":"v=spf1 -all"}`.
        data: serde_json::Value,
    },
    /// An FTP account (like `POST /v1/ftp-accounts`).
    FtpAccount {
        /// Login name.
        username: String,
        /// The domain whose site files it reaches.
        domain: String,
        /// Password hash.
        password_hash: String,
        /// Folder inside the site; absent: the site root.
        #[serde(default)]
        home: Option<String>,
        /// Quota in MiB.
        #[serde(default)]
        quota_mb: Option<u64>,
    },
    /// A database (like `POST /v1/databases`).
    Database {
        /// Name on the server.
        name: String,
        /// `mariadb` or `postgresql`.
        engine: String,
        /// Owning customer.
        customer: String,
        /// The db cluster; absent: the customer's or the operator's default.
        #[serde(default)]
        cluster: Option<String>,
        /// The domain it belongs to.
        #[serde(default)]
        domain: Option<String>,
    },
    /// A database user (like `POST /v1/db-users`), with the engine-native verifier
    /// the old server stored (MariaDB `*HEX`, PostgreSQL `SCRAM-SHA-256$...`).
    DbUser {
        /// Login name.
        name: String,
        /// `mariadb` or `postgresql`.
        engine: String,
        /// Owning customer.
        customer: String,
        /// The verifier, never a password.
        password_verifier: String,
        /// Databases it has all privileges on.
        #[serde(default)]
        databases: Vec<String>,
    },
}

/// `POST /v1/import` query.
#[derive(Debug, Clone, Default, Serialize, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub struct ImportParams {
    /// Check every line (in one transaction that is rolled back) and write nothing.
    #[serde(default)]
    pub dry_run: bool,
    /// Line number of the body's first line in the file (for the report).
    #[serde(default)]
    pub first_line: Option<u64>,
}

/// What happened to one line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ImportStatus {
    /// Created (or would be, in a dry run).
    Created,
    /// Already there, identical: nothing to do (a re-run resumes).
    Skipped,
    /// Not imported; `reason` says why.
    Refused,
}

/// One line's outcome.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ImportResult {
    /// Line number in the file (1-based).
    pub line: u64,
    /// The line's `kind`, if it could be read.
    pub kind: String,
    /// The object's name, if it could be read.
    pub name: String,
    /// Outcome.
    pub status: ImportStatus,
    /// Why it was refused (naming the field and rule), or the difference from the
    /// existing object.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// The answer to `POST /v1/import`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ImportReport {
    /// Whether nothing was written.
    pub dry_run: bool,
    /// Lines created.
    pub created: u64,
    /// Lines skipped as already present.
    pub skipped: u64,
    /// Lines refused.
    pub refused: u64,
    /// Created per kind.
    pub created_by_kind: BTreeMap<String, u64>,
    /// One entry per refused line, and per skipped or created line when asked
    /// (the CLI's `--json` shows them all).
    pub results: Vec<ImportResult>,
}
