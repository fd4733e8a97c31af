//! Syntax of a domain's services and the audit trail: `mailbox`, `alias`, `mail`,
//! `db`, `ftp`, `dns`, `events`.

use super::*;

// ------------------------------------------------------------------ mail

/// `hostplane mailbox ...`.
#[derive(Debug, Subcommand)]
pub enum MailboxCmd {
    /// Create a mailbox (a password is generated unless given)
    #[command(visible_alias = "create")]
    Add(MailboxAdd),
    /// List mailboxes
    #[command(visible_alias = "ls")]
    List(DomainList),
    /// Show one mailbox
    #[command(visible_alias = "get")]
    Show(AddressArg),
    /// Change a mailbox
    Update(MailboxUpdate),
    /// Delete a mailbox and its mail
    #[command(visible_alias = "rm")]
    Delete(AddressArg),
}

/// A positional mail address.
#[derive(Debug, Args)]
pub struct AddressArg {
    /// Mail address, e.g. info@example.com
    pub address: String,
}

/// `mailbox add`.
#[derive(Debug, Args)]
pub struct MailboxAdd {
    /// Address, e.g. info@example.com
    pub address: String,
    /// Password (10+ characters); generated and shown once when absent
    #[arg(long)]
    pub password: Option<String>,
    /// Quota in MiB, 0 = unlimited (default 1024)
    #[arg(long, value_name = "MIB")]
    pub quota_mb: Option<u64>,
    /// Display name
    #[arg(long)]
    pub display_name: Option<String>,
}

/// `mailbox update`.
#[derive(Debug, Args)]
pub struct MailboxUpdate {
    /// Address
    pub address: String,
    /// New password
    #[arg(long)]
    pub password: Option<String>,
    /// New quota in MiB
    #[arg(long, value_name = "MIB")]
    pub quota_mb: Option<u64>,
    /// New display name
    #[arg(long)]
    pub display_name: Option<String>,
    /// Allow (true) or block (false) logins
    #[arg(long, value_name = "true|false")]
    pub enabled: Option<bool>,
}

/// `hostplane alias ...`.
#[derive(Debug, Subcommand)]
pub enum AliasCmd {
    /// Create an alias that forwards to one or more addresses
    #[command(visible_alias = "create")]
    Add(AliasSet),
    /// List aliases
    #[command(visible_alias = "ls")]
    List(DomainList),
    /// Show one alias
    #[command(visible_alias = "get")]
    Show(AddressArg),
    /// Replace an alias's destinations
    Update(AliasSet),
    /// Delete an alias
    #[command(visible_alias = "rm")]
    Delete(AddressArg),
}

/// `alias add` / `alias update`.
#[derive(Debug, Args)]
pub struct AliasSet {
    /// Alias address, e.g. sales@example.com
    pub address: String,
    /// Destination addresses (local mailboxes or external)
    #[arg(required = true, num_args = 1..)]
    pub destinations: Vec<String>,
}

// ------------------------------------------------------------------ databases

/// `hostplane db ...`.
#[derive(Debug, Subcommand)]
pub enum DbCmd {
    /// Create a database
    #[command(visible_alias = "create")]
    Add(DbAdd),
    /// List databases
    #[command(visible_alias = "ls")]
    List(CustomerList),
    /// Show one database
    #[command(visible_alias = "get")]
    Show(NameArg),
    /// Link a database to a domain (or unlink with --domain "")
    Update(DbUpdate),
    /// Delete a database (its db server keeps a dump in its trash for some days)
    #[command(visible_alias = "rm")]
    Delete(NameArg),
    /// List dumps of deleted databases that can be restored
    Trash(JsonOnly),
    /// Bring a deleted database back from its dump in the trash
    Restore(DbRestore),
}

/// `db restore`.
#[derive(Debug, Args)]
pub struct DbRestore {
    /// Trash entry (see `hostplane db trash`)
    pub entry: String,
    /// Name of the restored database (default: the name it had)
    #[arg(long)]
    pub name: Option<String>,
}

/// A command whose only option is `--json` (global).
#[derive(Debug, Args)]
pub struct JsonOnly {}

/// `hostplane mail ...`.
#[derive(Debug, Subcommand)]
pub enum MailCmd {
    /// Show every mail server's queue (admins)
    Queue(JsonOnly),
    /// Retry every mail server's queue now (admins)
    Flush(JsonOnly),
    /// Check what receiving mail servers check: SPF, DKIM, DMARC, MX, and that each
    /// mail server's HELO name resolves to its address and back (PTR)
    Check(MailCheckArgs),
}

/// `mail check`.
#[derive(Debug, Args)]
pub struct MailCheckArgs {
    /// Domain whose mail to check
    pub domain: String,
}

/// `db add`.
#[derive(Debug, Args)]
pub struct DbAdd {
    /// Name: [a-z][a-z0-9_]*, at most 32
    pub name: String,
    /// mariadb or postgres
    #[arg(long)]
    pub engine: model::DbEngine,
    /// Owning customer (admins and resellers)
    #[arg(long)]
    pub customer: Option<String>,
    /// db cluster (default: the customer's, then the operator's default)
    #[arg(long)]
    pub cluster: Option<String>,
    /// Domain to link it to
    #[arg(long)]
    pub domain: Option<String>,
}

/// `db update`.
#[derive(Debug, Args)]
pub struct DbUpdate {
    /// Database name
    pub name: String,
    /// Domain to link to; "" unlinks
    #[arg(long, required = true)]
    pub domain: Option<String>,
}

/// `hostplane db-user ...`.
#[derive(Debug, Subcommand)]
pub enum DbUserCmd {
    /// Create a database user (a password is generated unless given)
    #[command(visible_alias = "create")]
    Add(DbUserAdd),
    /// List database users
    #[command(visible_alias = "ls")]
    List(CustomerList),
    /// Show one database user
    #[command(visible_alias = "get")]
    Show(NameArg),
    /// Change a user's password or grants
    Update(DbUserUpdate),
    /// Delete a database user
    #[command(visible_alias = "rm")]
    Delete(NameArg),
}

/// `db-user add`.
#[derive(Debug, Args)]
pub struct DbUserAdd {
    /// Login name: [a-z][a-z0-9_]*, at most 32
    pub name: String,
    /// mariadb or postgres (default: that of the granted databases)
    #[arg(long)]
    pub engine: Option<model::DbEngine>,
    /// Owning customer (admins and resellers)
    #[arg(long)]
    pub customer: Option<String>,
    /// db cluster (default: that of its first database)
    #[arg(long)]
    pub cluster: Option<String>,
    /// Password; generated and shown once when absent
    #[arg(long)]
    pub password: Option<String>,
    /// Database to grant (repeatable)
    #[arg(long = "database", value_name = "DB")]
    pub databases: Vec<String>,
}

/// `db-user update`.
#[derive(Debug, Args)]
pub struct DbUserUpdate {
    /// Login name
    pub name: String,
    /// New password
    #[arg(long)]
    pub password: Option<String>,
    /// Database to grant (repeatable; replaces the grant list)
    #[arg(long = "database", value_name = "DB")]
    pub databases: Vec<String>,
    /// Revoke every grant
    #[arg(long, conflicts_with = "databases")]
    pub no_databases: bool,
}

// ------------------------------------------------------------------ ftp

/// `hostplane ftp ...`.
#[derive(Debug, Subcommand)]
pub enum FtpCmd {
    /// Create an FTP account (a password is generated unless given)
    #[command(visible_alias = "create")]
    Add(FtpAdd),
    /// List FTP accounts
    #[command(visible_alias = "ls")]
    List(DomainList),
    /// Show one FTP account
    #[command(visible_alias = "get")]
    Show(UsernameArg),
    /// Change an FTP account
    Update(FtpUpdate),
    /// Delete an FTP account (the files stay)
    #[command(visible_alias = "rm")]
    Delete(UsernameArg),
}

/// A positional FTP user name.
#[derive(Debug, Args)]
pub struct UsernameArg {
    /// FTP login name
    pub username: String,
}

/// `ftp add`.
#[derive(Debug, Args)]
pub struct FtpAdd {
    /// Login name
    pub username: String,
    /// Domain whose site files it reaches
    #[arg(long)]
    pub domain: String,
    /// Password; generated and shown once when absent
    #[arg(long)]
    pub password: Option<String>,
    /// Folder inside the site files (default: the site root)
    #[arg(long)]
    pub home: Option<String>,
    /// Quota MiB, 0 = unlimited
    #[arg(long, value_name = "MIB")]
    pub quota_mb: Option<u64>,
}

/// `ftp update`.
#[derive(Debug, Args)]
pub struct FtpUpdate {
    /// Login name
    pub username: String,
    /// New password
    #[arg(long)]
    pub password: Option<String>,
    /// New home folder
    #[arg(long)]
    pub home: Option<String>,
    /// New quota MiB
    #[arg(long, value_name = "MIB")]
    pub quota_mb: Option<u64>,
}

// ------------------------------------------------------------------ dns

/// `hostplane dns ...`.
#[derive(Debug, Subcommand)]
pub enum DnsCmd {
    /// Add a record: DOMAIN NAME TYPE DATA...
    #[command(
        visible_alias = "create",
        after_help = "Record data by type:
  A 192.0.2.1            AAAA 2001:db8::1          CNAME target.example.net
  MX 10 mx.example.net   TXT \"v=spf1 -all\"         NS ns1.other.net
  SRV 10 5 5060 sip.example.com (priority weight port target)
  CAA 0 issue letsencrypt.org (flags tag value)

Examples:
  hostplane dns add example.com www A 192.0.2.1 --ttl 300
  hostplane dns add example.com _sip._tcp SRV 10 5 5060 sip.example.com
  hostplane dns add example.com @ CAA 0 issue letsencrypt.org"
    )]
    Add(DnsAdd),
    /// List records (of one domain, or every visible one)
    #[command(visible_alias = "ls")]
    List(DnsList),
    /// Show one record by id
    #[command(visible_alias = "get")]
    Show(IdArg),
    /// Change a record's name, TTL or data
    #[command(after_help = "Examples:
  hostplane dns update 12 --ttl 600
  hostplane dns update 12 A 192.0.2.7
  hostplane dns update 12 --ttl 0          # back to the cluster default")]
    Update(DnsUpdate),
    /// Delete a record by id
    #[command(visible_alias = "rm")]
    Delete(IdArg),
}

/// A positional record id.
#[derive(Debug, Args)]
pub struct IdArg {
    /// Record id (see `hostplane dns list`)
    pub id: i64,
}

/// `dns add`.
#[derive(Debug, Args)]
pub struct DnsAdd {
    /// Zone (domain name)
    pub domain: String,
    /// Owner name relative to the domain: @, www, _sip._tcp, *.dev
    pub name: String,
    /// Record type: A, AAAA, CNAME, MX, TXT, SRV, CAA, NS
    pub rtype: String,
    /// Record data (see below); put `--` before data that starts with `-`
    #[arg(required = true, num_args = 1..)]
    pub data: Vec<String>,
    /// TTL seconds (default: the cluster's)
    #[arg(long, value_name = "SECONDS")]
    pub ttl: Option<u32>,
}

/// `dns list`.
#[derive(Debug, Args)]
pub struct DnsList {
    /// Only records of this domain
    pub domain: Option<String>,
    /// Only records of this customer's domains
    #[arg(long)]
    pub customer: Option<String>,
    /// Paging.
    #[command(flatten)]
    pub list: ListOpts,
}

/// `dns update`.
#[derive(Debug, Args)]
pub struct DnsUpdate {
    /// Record id
    pub id: i64,
    /// New type and data, e.g. `A 192.0.2.7`
    #[arg(num_args = 0.., value_name = "TYPE DATA")]
    pub data: Vec<String>,
    /// New owner name
    #[arg(long)]
    pub name: Option<String>,
    /// New TTL; 0 returns to the cluster default
    #[arg(long, value_name = "SECONDS")]
    pub ttl: Option<u32>,
}

// ------------------------------------------------------------------ events

/// `hostplane events`.
#[derive(Debug, Args)]
pub struct EventsArgs {
    /// Paging.
    #[command(flatten)]
    pub list: ListOpts,
}
