//! Syntax of the customer-facing objects: `customer`, `token`, `domain`, `site`
//! (with its certificates, files, restores and deployments).

use super::*;

// ------------------------------------------------------------------ customers

/// `hostplane customer ...`.
#[derive(Debug, Subcommand)]
pub enum CustomerCmd {
    /// Create an account
    #[command(visible_alias = "create")]
    Add(CustomerAdd),
    /// List accounts
    #[command(visible_alias = "ls")]
    List(ListOnly),
    /// Show one account
    #[command(visible_alias = "get")]
    Show(NameArg),
    /// Change an account
    Update(Box<CustomerUpdate>),
    /// Delete an account that owns nothing
    #[command(visible_alias = "rm")]
    Delete(NameArg),
}

/// `customer add`.
#[derive(Debug, Args)]
pub struct CustomerAdd {
    /// Name: lowercase letters, digits, hyphens
    pub name: String,
    /// customer (default), reseller or admin
    #[arg(long, value_parser = ["customer", "reseller", "admin"])]
    pub kind: Option<String>,
    /// Name for people
    #[arg(long)]
    pub display_name: Option<String>,
    /// Contact address
    #[arg(long)]
    pub email: Option<String>,
    /// Reseller managing it (admins only)
    #[arg(long)]
    pub reseller: Option<String>,
    /// Login password (10+ characters); without one the account logs in by token only
    #[arg(long)]
    pub password: Option<String>,
    /// Default cluster for a role of new domains, ROLE=CLUSTER (repeatable)
    #[arg(long = "default-cluster", value_name = "ROLE=CLUSTER", value_parser = parse_role_cluster)]
    pub default_clusters: Vec<(String, String)>,
    /// Storage quota for all the customer's databases, MiB (0: unlimited); at 90% the
    /// db server warns, above 100% it stops writes until usage is back under
    #[arg(long, value_name = "MIB")]
    pub db_quota_mb: Option<u64>,
}

/// `customer update`.
#[derive(Debug, Args)]
pub struct CustomerUpdate {
    /// Account name
    pub name: String,
    /// New display name
    #[arg(long)]
    pub display_name: Option<String>,
    /// New contact address
    #[arg(long)]
    pub email: Option<String>,
    /// New password
    #[arg(long)]
    pub password: Option<String>,
    /// Disable (true) or enable (false) the account
    #[arg(long, value_name = "true|false")]
    pub disabled: Option<bool>,
    /// New default clusters, ROLE=CLUSTER (repeatable; replaces the map)
    #[arg(long = "default-cluster", value_name = "ROLE=CLUSTER", value_parser = parse_role_cluster)]
    pub default_clusters: Vec<(String, String)>,
    /// Storage quota for all the customer's databases, MiB (0: unlimited); at 90% the
    /// db server warns, above 100% it stops writes until usage is back under
    #[arg(long, value_name = "MIB")]
    pub db_quota_mb: Option<u64>,
    /// Plan (admins and resellers); "" for the controller's default plan
    #[arg(long)]
    pub plan: Option<String>,
    /// Overrides of the plan's limits for this account.
    #[command(flatten)]
    pub limits: crate::commands::plans::LimitArgs,
    /// Remove an override, e.g. max_domains (repeatable)
    #[arg(long = "clear-limit", value_name = "LIMIT")]
    pub clear_limits: Vec<String>,
    /// Resellers: may choose clusters for their customers (admins only)
    #[arg(long, value_name = "true|false")]
    pub may_choose_clusters: Option<bool>,
}

// ------------------------------------------------------------------ tokens

/// `hostplane token ...`.
#[derive(Debug, Subcommand)]
pub enum TokenCmd {
    /// Create a token (its secret is shown once)
    #[command(visible_alias = "add")]
    Create(TokenCreate),
    /// List tokens (without secrets)
    #[command(visible_alias = "ls")]
    List(ListOnly),
    /// Revoke a token by id
    #[command(visible_aliases = ["rm", "delete"])]
    Revoke(TokenRevoke),
    /// A token acting as a customer you manage; changes made with it are audited
    /// as `<you> as <customer>`
    Impersonate(TokenImpersonate),
    /// Two-factor authentication (TOTP) of your account
    #[command(subcommand)]
    Totp(TotpCmd),
}

/// `token impersonate`.
#[derive(Debug, Args)]
pub struct TokenImpersonate {
    /// The customer to act as
    pub account: String,
    /// Minutes the token is valid, 1-480 (default 60)
    #[arg(long)]
    pub minutes: Option<u32>,
}

/// `token totp ...`.
#[derive(Debug, Subcommand)]
pub enum TotpCmd {
    /// Whether two-factor authentication is on
    Status,
    /// Start an enrolment: prints the secret and the otpauth:// URI
    Enroll,
    /// Turn it on with the authenticator's current code; prints the recovery codes once
    Confirm {
        /// Six digits
        code: String,
    },
    /// Turn it off with a current code (or --password, read from stdin)
    Disable {
        /// A current code
        #[arg(long, required_unless_present = "password")]
        code: Option<String>,
        /// Prove it with the account's password instead (one line of stdin)
        #[arg(long)]
        password: bool,
    },
}

/// `token create`.
#[derive(Debug, Args)]
pub struct TokenCreate {
    /// Label, e.g. laptop
    pub name: String,
    /// Account the token acts as (default: you)
    #[arg(long)]
    pub account: Option<String>,
    /// Days until it expires (default: never)
    #[arg(long, value_name = "DAYS")]
    pub expires_in_days: Option<u32>,
}

/// `token revoke`.
#[derive(Debug, Args)]
pub struct TokenRevoke {
    /// Token id (see `hostplane token list`)
    pub id: String,
}

// ------------------------------------------------------------------ domains

/// `hostplane domain ...`.
#[derive(Debug, Subcommand)]
pub enum DomainCmd {
    /// Add a domain and place it on one cluster per role
    #[command(visible_alias = "create")]
    Add(DomainAdd),
    /// List domains
    #[command(visible_alias = "ls")]
    List(CustomerList),
    /// Show one domain
    #[command(visible_alias = "get")]
    Show(NameArg),
    /// Move a domain's roles to other clusters (admins)
    Update(DomainUpdate),
    /// Delete a domain and everything under it
    #[command(visible_alias = "rm")]
    Delete(NameArg),
    /// Show the TXT record proving control of a registrable domain whose names
    /// another account holds (publish it, then `domain add` again)
    #[command(after_help = "Examples:
  hostplane domain challenge www.example.com
  hostplane domain challenge example.co.uk --customer acme --json")]
    Challenge(DomainChallenge),
    /// Give every name under a registrable domain to another customer (admins)
    #[command(after_help = "Examples:
  hostplane domain transfer example.com --to acme    # also moves www.example.com, ...")]
    Transfer(DomainTransfer),
}

/// `domain challenge`.
#[derive(Debug, Args)]
pub struct DomainChallenge {
    /// A domain name under the registrable domain
    pub name: String,
    /// The customer proving control (required for admins and resellers)
    #[arg(long)]
    pub customer: Option<String>,
}

/// `domain transfer`.
#[derive(Debug, Args)]
pub struct DomainTransfer {
    /// A domain name under the registrable domain
    pub name: String,
    /// The customer that will own the names
    #[arg(long)]
    pub to: String,
}

/// `domain add`.
#[derive(Debug, Args)]
pub struct DomainAdd {
    /// Domain name (Unicode is accepted)
    pub name: String,
    /// Owning customer (required for admins and resellers)
    #[arg(long)]
    pub customer: Option<String>,
    /// Cluster for a role, ROLE=CLUSTER (repeatable); others come from the defaults
    #[arg(long = "cluster", value_name = "ROLE=CLUSTER", value_parser = parse_role_cluster)]
    pub clusters: Vec<(String, String)>,
}

/// `domain update`.
#[derive(Debug, Args)]
pub struct DomainUpdate {
    /// Domain name
    pub name: String,
    /// Cluster to move a role to, ROLE=CLUSTER (repeatable)
    #[arg(long = "cluster", value_name = "ROLE=CLUSTER", value_parser = parse_role_cluster, required = true)]
    pub clusters: Vec<(String, String)>,
}

/// A listing filtered by customer.
#[derive(Debug, Args)]
pub struct CustomerList {
    /// Only objects of this customer
    #[arg(long)]
    pub customer: Option<String>,
    /// Paging.
    #[command(flatten)]
    pub list: ListOpts,
}

/// A listing filtered by domain and customer.
#[derive(Debug, Args)]
pub struct DomainList {
    /// Only objects of this domain
    #[arg(long)]
    pub domain: Option<String>,
    /// Only objects of this customer
    #[arg(long)]
    pub customer: Option<String>,
    /// Paging.
    #[command(flatten)]
    pub list: ListOpts,
}

// ------------------------------------------------------------------ sites

/// `hostplane site ...`.
#[derive(Debug, Subcommand)]
pub enum SiteCmd {
    /// Create the site of a domain
    #[command(visible_alias = "create")]
    Add(SiteAdd),
    /// List sites
    #[command(visible_alias = "ls")]
    List(DomainList),
    /// Show one site: its settings, disk usage against its quota, conflicts and warnings
    #[command(visible_alias = "get")]
    Show(DomainArg),
    /// Change a site
    #[command(after_help = "Examples:
  hostplane site update example.com --php true
  hostplane site update example.com --mode all           # every web server serves it
  hostplane site update example.com --keep wp-content/uploads --local wp-content/cache

Path classes (relative to the site root, at most 32 each):
  --keep   survives deployments (`site upload`, `site rollback`): uploads, user content
  --local  not replicated, each web server keeps its own copy: caches
  everything else is replicated to every web server of the site's cluster")]
    Update(SiteUpdate),
    /// List the losing versions a conflict left on the files server
    #[command(
        after_help = "Two web servers (or FTP and PHP) changed the same path at once: the
files server kept one version and saved the other in the site's conflicts area.

Examples:
  hostplane site conflicts example.com
  hostplane site conflicts example.com --json"
    )]
    Conflicts(DomainArg),
    /// Bring back a deleted or overwritten file or folder from the files server's kept versions
    #[command(after_help = "The files server keeps overwritten and deleted files for
`site_versions_days` (default 7). Replication is not a backup: a deletion reaches every
web server in seconds, and this is how to undo it.

Examples:
  hostplane site restore example.com wp-content/uploads/logo.png
  hostplane site restore example.com wp-content/plugins --at 2026-12-06T18:00:00Z
  hostplane site restore example.com index.php --no-wait   # prints the request id
  hostplane site restore-status example.com r12-0123456789abcdef")]
    Restore(SiteRestore),
    /// Show where a restore stands (pending, ok or failed)
    RestoreStatus(SiteRestoreStatus),
    /// Make an earlier deployment the site's content again (kept and local paths stay)
    #[command(
        after_help = "The last 3 deployments (`site upload`) are kept per site.

Examples:
  hostplane site rollback example.com               # the one before the current
  hostplane site deployments example.com            # the kept ones, with their ids
  hostplane site rollback example.com 3f9a…         # a given one"
    )]
    Rollback(SiteRollbackArgs),
    /// Show the site's access, error, PHP and cron logs from every web server, merged
    #[command(
        after_help = "Lines come from every web server of the site's cluster, in time
order, each marked with its server. Logs rotate on the servers at 64 MiB or daily (7 kept).

Examples:
  hostplane site logs example.com                    # the last 200 lines of every log
  hostplane site logs example.com --error --since 1h # engine errors and PHP errors
  hostplane site logs example.com --access -n 1000
  hostplane site logs example.com --follow           # keep printing new lines (Ctrl-C stops)
  hostplane site logs example.com --json"
    )]
    Logs(SiteLogsArgs),
    /// List the kept deployments (the current one first)
    #[command(after_help = "Examples:
  hostplane site deployments example.com
  hostplane site deployments example.com --json")]
    Deployments(DomainArg),
    /// Delete a site
    #[command(visible_alias = "rm")]
    Delete(DomainArg),
    /// Deploy a folder as the site's files (replaces them; for those not using FTP)
    #[command(after_help = "Examples:
  hostplane site upload example.com ./public      # the folder's content becomes the site root")]
    Upload(SiteUpload),
    /// Show, upload or remove the site's own TLS certificate
    #[command(
        subcommand,
        after_help = "Examples:
  hostplane site cert show example.com
  hostplane site cert upload example.com --cert fullchain.pem --key privkey.pem
  hostplane site cert delete example.com     # back to the internal CA's certificate
  hostplane site cert status example.com     # the ACME certificate: issuer, expiry, errors
  hostplane site cert acme example.com --off # keep the internal or uploaded certificate
  hostplane site cert acme example.com --challenge dns-01   # validate through our DNS"
    )]
    Cert(SiteCertCmd),
}

/// `site upload`.
#[derive(Debug, Args)]
pub struct SiteUpload {
    /// Domain name of the site
    pub domain: String,
    /// Folder whose content becomes the site's files (symlinks are skipped)
    pub dir: std::path::PathBuf,
}

/// `site cert ...`.
#[derive(Debug, Subcommand)]
pub enum SiteCertCmd {
    /// Which certificate the site is served with
    Show(DomainArg),
    /// Serve the site with your own certificate (checked to match its key and name the domain)
    Upload(SiteCertUpload),
    /// Remove an uploaded certificate; the site gets one from the internal CA again
    #[command(visible_alias = "rm")]
    Delete(DomainArg),
    /// The site's publicly trusted (ACME) certificate: issuer, expiry, last attempt and error
    Status(DomainArg),
    /// Turn ACME on or off for the site (on by default when the controller has `[acme]`), choose its challenge
    Acme(SiteCertAcme),
}

/// `site cert acme`.
#[derive(Debug, Args)]
pub struct SiteCertAcme {
    /// Domain name of the site
    pub domain: String,
    /// Turn ACME on
    #[arg(long, conflicts_with = "off", required_unless_present_any = ["off", "challenge"])]
    pub on: bool,
    /// Turn ACME off
    #[arg(long)]
    pub off: bool,
    /// How the CA validates the names: `auto` (DNS-01 where the domain is
    /// delegated to the platform's DNS and for wildcards, else HTTP-01),
    /// `http-01` or `dns-01`
    #[arg(long, value_name = "auto|http-01|dns-01")]
    pub challenge: Option<String>,
}

/// `site cert upload`.
#[derive(Debug, Args)]
pub struct SiteCertUpload {
    /// Domain name of the site
    pub domain: String,
    /// PEM file with the certificate chain, the site's certificate first
    #[arg(long, value_name = "FILE")]
    pub cert: std::path::PathBuf,
    /// PEM file with its private key
    #[arg(long, value_name = "FILE")]
    pub key: std::path::PathBuf,
}

/// A positional domain name.
#[derive(Debug, Args)]
pub struct DomainArg {
    /// Domain name
    pub domain: String,
}

/// `site add`.
#[derive(Debug, Args)]
pub struct SiteAdd {
    /// Domain of the site
    pub domain: String,
    /// Another host name served by the site (repeatable)
    #[arg(long = "alias", value_name = "HOST")]
    pub aliases: Vec<String>,
    /// Turn PHP on
    #[arg(long)]
    pub php: bool,
    /// single (active on one server) or all (every server, DNS round robin)
    #[arg(long, value_parser = ["single", "all"])]
    pub mode: Option<String>,
    /// Redirect HTTP to HTTPS
    #[arg(long)]
    pub https_redirect: bool,
}

/// `site update`.
#[derive(Debug, Args)]
pub struct SiteUpdate {
    /// Domain of the site
    pub domain: String,
    /// New alias host name (repeatable; replaces the list)
    #[arg(long = "alias", value_name = "HOST")]
    pub aliases: Vec<String>,
    /// Remove every alias
    #[arg(long, conflicts_with = "aliases")]
    pub clear_aliases: bool,
    /// PHP on (true) or off (false)
    #[arg(long, value_name = "true|false")]
    pub php: Option<bool>,
    /// single or all
    #[arg(long, value_parser = ["single", "all"])]
    pub mode: Option<String>,
    /// Redirect HTTP to HTTPS (true|false)
    #[arg(long, value_name = "true|false")]
    pub https_redirect: Option<bool>,
    /// A path that survives deployments, e.g. wp-content/uploads (repeatable; replaces the list)
    #[arg(long = "keep", value_name = "PATH")]
    pub keep: Vec<String>,
    /// Keep no path across deployments
    #[arg(long, conflicts_with = "keep")]
    pub clear_keep: bool,
    /// A path not replicated, each web server keeps its own, e.g. wp-content/cache
    /// (repeatable; replaces the list)
    #[arg(long = "local", value_name = "PATH")]
    pub local: Vec<String>,
    /// Replicate every path again
    #[arg(long, conflicts_with = "local")]
    pub clear_local: bool,
    /// Serve only this folder of the site, e.g. public (a framework's .env and
    /// vendor/ beside it are never served; PHP still reaches them); `/` for all
    #[arg(long, value_name = "DIR")]
    pub docroot: Option<String>,
    /// Serve the whole site again (same as --docroot /)
    #[arg(long, conflicts_with = "docroot")]
    pub clear_docroot: bool,
    /// Send Strict-Transport-Security (on|off); only while the site has an uploaded
    /// (browser-trusted) certificate, never with the internal one
    #[arg(long, value_name = "on|off", value_parser = on_off)]
    pub hsts: Option<bool>,
    /// PHP version of the site's pool, e.g. 8.2, as the web servers have it
    /// (`site show` lists them); `default` for the servers' default
    #[arg(long, value_name = "X.Y|default")]
    pub php_version: Option<String>,
    /// Set a php.ini value, KEY=VALUE (repeatable), e.g. upload_max_filesize=64M
    #[arg(long = "php-set", value_name = "KEY=VALUE", value_parser = key_value,
          long_help = php_set_help())]
    pub php_set: Vec<(String, String)>,
    /// Put a php.ini value back to its default (repeatable)
    #[arg(long = "php-unset", value_name = "KEY")]
    pub php_unset: Vec<String>,
}

/// `on`/`off` (also `true`/`false`).
fn on_off(v: &str) -> Result<bool, String> {
    match v {
        "on" | "true" => Ok(true),
        "off" | "false" => Ok(false),
        _ => Err(format!("`{v}`: on or off")),
    }
}

/// `KEY=VALUE`.
fn key_value(v: &str) -> Result<(String, String), String> {
    v.split_once('=')
        .map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned()))
        .ok_or_else(|| format!("`{v}`: write KEY=VALUE, e.g. memory_limit=256M"))
}

/// `--php-set`'s long help: every allowed key with its rule (from `model::web`,
/// the one list the API checks against).
fn php_set_help() -> String {
    let mut h = String::from(
        "Set a php.ini value, KEY=VALUE (repeatable), e.g. upload_max_filesize=64M.\n\
         Sizes and times are also bounded by the customer's plan (php_memory_mb,\n\
         php_upload_mb, php_execution_s). Allowed keys:\n",
    );
    for k in model::web::INI_KEYS {
        h.push_str(&format!("  {:<24}{}\n", k.key, k.help));
    }
    h
}

/// `site restore`.
#[derive(Debug, Args)]
pub struct SiteRestore {
    /// Domain of the site
    pub domain: String,
    /// Path inside the site, e.g. wp-content/uploads/logo.png
    pub path: String,
    /// The version current at this time (RFC 3339, e.g. 2026-12-06T18:00:00Z); default:
    /// the last version replaced or deleted
    #[arg(long, value_name = "TIME")]
    pub at: Option<String>,
    /// Print the request id and return at once instead of waiting for the result
    #[arg(long)]
    pub no_wait: bool,
}

/// `site restore-status`.
#[derive(Debug, Args)]
pub struct SiteRestoreStatus {
    /// Domain of the site
    pub domain: String,
    /// The request id `site restore` printed
    pub id: String,
}

/// `site rollback`.
#[derive(Debug, Args)]
pub struct SiteRollbackArgs {
    /// Domain of the site
    pub domain: String,
    /// The kept deployment to make current (`site deployments` lists them); default:
    /// the one before the current
    pub id: Option<String>,
}

/// `site logs`.
#[derive(Debug, Args)]
pub struct SiteLogsArgs {
    /// Domain of the site
    pub domain: String,
    /// Only the access log
    #[arg(long)]
    pub access: bool,
    /// Only errors: the engine's error log and PHP's
    #[arg(long)]
    pub error: bool,
    /// Only PHP's error log
    #[arg(long)]
    pub php: bool,
    /// Only the cron runs
    #[arg(long)]
    pub cron: bool,
    /// Lines at or after: a time ago (90s, 15m, 2h, 7d), a UTC time today (12:55),
    /// a UTC date and time (2026-12-07 12:55) or RFC 3339
    #[arg(long)]
    pub since: Option<String>,
    /// At most this many lines, the newest (1 to 5000)
    #[arg(short = 'n', long, default_value_t = 200)]
    pub lines: u32,
    /// Keep printing new lines as they come (every 2 s)
    #[arg(short, long)]
    pub follow: bool,
}
