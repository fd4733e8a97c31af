//! Syntax of the platform's own commands: `controller`, `up`, `agent`, `login`,
//! `cluster`, `server` and join tokens.

use super::*;

// ------------------------------------------------------------------ controller, up

/// `hostplane controller ...`.
#[derive(Debug, Subcommand)]
pub enum ControllerCmd {
    /// Create a data dir: CA, TLS certificate, config file, store, first admin token
    #[command(after_help = "Examples:
  hostplane controller init --data-dir ./cp
  hostplane controller init --data-dir /var/lib/hostplane --listen 0.0.0.0:8443 --name cp.example.net --store postgres://hp@db/hostplane")]
    Init(InitArgs),
    /// Serve the REST API until Ctrl-C or SIGTERM
    #[command(after_help = "Examples:
  hostplane controller run --config ./cp/controller.toml
  hostplane controller run --config ./cp/controller.toml --listen 127.0.0.1:0")]
    Run(RunArgs),
}

/// `hostplane controller init`.
#[derive(Debug, Args)]
pub struct InitArgs {
    /// Data directory to create (must be empty or absent)
    #[arg(long, value_name = "DIR")]
    pub data_dir: PathBuf,
    /// Address the controller will listen on
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:8443")]
    pub listen: SocketAddr,
    /// Store URL (default: a SQLite file in the data dir), e.g. postgres://user@host/db
    #[arg(long, value_name = "URL")]
    pub store: Option<String>,
    /// Extra DNS name or IP address for the TLS certificate (repeatable)
    #[arg(long = "name", value_name = "EXTRA")]
    pub names: Vec<String>,
    /// Name of the first admin account
    #[arg(long, value_name = "NAME", default_value = "admin")]
    pub admin: String,
    /// Serve plain HTTP instead of HTTPS (loopback addresses only)
    #[arg(long)]
    pub plain_http: bool,
}

/// `hostplane controller run`.
#[derive(Debug, Args)]
pub struct RunArgs {
    /// Config file written by `controller init`
    #[arg(long, value_name = "FILE")]
    pub config: PathBuf,
    /// Listen on this address instead of the configured one (port 0: any free port)
    #[arg(long, value_name = "ADDR")]
    pub listen: Option<SocketAddr>,
}

/// `hostplane up`.
#[derive(Debug, Args)]
pub struct UpArgs {
    /// Data directory (created on the first run, reused after)
    #[arg(long, value_name = "DIR", default_value = "hostplane-up")]
    pub data_dir: PathBuf,
    /// Address of the controller's API (port 0: any free port, printed)
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:8443")]
    pub listen: SocketAddr,
    /// Servers in the web-eu cluster (web-1 .. web-N; the web-us server comes after)
    #[arg(long, value_name = "N", default_value_t = 2, value_parser = clap::value_parser!(u8).range(1..=8))]
    pub web: u8,
    /// First three octets of the servers' loopback addresses (web-1 is <BASE>.11)
    #[arg(long, value_name = "A.B.C", default_value = "127.0.0", value_parser = parse_address_base)]
    pub address_base: [u8; 3],
    /// Heartbeat interval of the controller and agents in milliseconds (suspect after 3 missed)
    #[arg(long, value_name = "MS", default_value_t = 1000, value_parser = clap::value_parser!(u64).range(50..=60000))]
    pub health_interval_ms: u64,
    /// Seconds to wait for every agent to be up before printing the summary anyway
    #[arg(long, value_name = "S", default_value_t = 120)]
    pub wait_secs: u64,
    /// ACME directory for publicly trusted site certificates (`letsencrypt`,
    /// `letsencrypt-staging` or a URL, e.g. Pebble's); sets the controller's `[acme]`
    #[arg(long, value_name = "URL")]
    pub acme_directory: Option<String>,
    /// Extra roots (PEM) to trust for the ACME server's HTTPS (Pebble's own CA)
    #[arg(long, value_name = "FILE", requires = "acme_directory")]
    pub acme_ca_file: Option<PathBuf>,
}

/// Parse `127.0.0` (three octets inside 127.0.0.0/8).
pub fn parse_address_base(text: &str) -> Result<[u8; 3], String> {
    let parts: Vec<&str> = text.trim().trim_end_matches('.').split('.').collect();
    let bad =
        || format!("`{text}` is not three octets of a loopback address, e.g. 127.0.0 or 127.0.9");
    if parts.len() != 3 {
        return Err(bad());
    }
    let mut out = [0u8; 3];
    for (slot, part) in out.iter_mut().zip(&parts) {
        *slot = part.parse().map_err(|_| bad())?;
    }
    if out[0] != 127 {
        return Err(format!(
            "`{text}` is outside 127.0.0.0/8; `up` runs every server on loopback addresses"
        ));
    }
    Ok(out)
}

/// `hostplane agent`.
#[derive(Debug, Args)]
pub struct AgentArgs {
    /// Agent config file (TOML: name, controllers, ca_file, join_token_file, state_dir, bind, ...)
    #[arg(long, value_name = "FILE")]
    pub config: PathBuf,
}

// ------------------------------------------------------------------ login

/// `hostplane login`.
#[derive(Debug, Args)]
pub struct LoginArgs {
    /// An API token (e.g. the admin token printed by `controller init`)
    #[arg(long, value_name = "TOKEN", conflicts_with = "account")]
    pub token: Option<String>,
    /// Log in with an account name; the password is read from stdin
    #[arg(long, value_name = "NAME")]
    pub account: Option<String>,
    /// With --account, when two-factor authentication is on: the authenticator's
    /// six-digit code, or a recovery code
    #[arg(long, value_name = "CODE", requires = "account")]
    pub code: Option<String>,
}

// ------------------------------------------------------------------ clusters

/// `hostplane cluster ...`.
#[derive(Debug, Subcommand)]
pub enum ClusterCmd {
    /// Create a cluster
    #[command(visible_alias = "create")]
    Add(ClusterAdd),
    /// List clusters
    #[command(visible_alias = "ls")]
    List(ListOnly),
    /// Show one cluster
    #[command(visible_alias = "get")]
    Show(NameArg),
    /// Change a cluster
    Update(ClusterUpdate),
    /// Delete an empty cluster
    #[command(visible_alias = "rm")]
    Delete(NameArg),
    /// A DNS cluster's TSIG key and catalog zone, for external secondaries (admins)
    #[command(subcommand)]
    Tsig(TsigCmd),
}

/// `hostplane cluster tsig ...`.
#[derive(Debug, Subcommand)]
pub enum TsigCmd {
    /// Print the key with ready-to-paste BIND and Knot secondary configuration
    #[command(after_help = "Examples:
  hostplane cluster tsig show dns-eu            # key, BIND named.conf and knot.conf parts
  hostplane cluster tsig show dns-eu --json     # name, algorithm, secret, bind_config ...
  hostplane cluster update dns-eu --external-secondary 198.51.100.53   # allow it to transfer")]
    Show(NameArg),
    /// Issue a new secret; the previous one stays valid for a grace period
    #[command(after_help = "Examples:
  hostplane cluster tsig rotate dns-eu               # previous key valid 24 h (controller tsig.grace_seconds)
  hostplane cluster tsig rotate dns-eu --grace 1h    # or 90m, 2d, 3600 (seconds)
  hostplane cluster tsig rotate dns-eu --grace 0     # leaked key: refuse the old one at once")]
    Rotate(TsigRotate),
}

/// `cluster tsig rotate`.
#[derive(Debug, Args)]
pub struct TsigRotate {
    /// DNS cluster name
    pub name: String,
    /// How long the previous secret stays valid: seconds, or with s/m/h/d (at most 30d)
    #[arg(long, value_name = "DURATION", value_parser = parse_grace)]
    pub grace: Option<u64>,
}

/// `3600`, `90m`, `1h`, `2d` → seconds.
fn parse_grace(text: &str) -> Result<u64, String> {
    let t = text.trim();
    let (digits, unit) = match t.char_indices().last() {
        Some((i, c)) if c.is_ascii_alphabetic() => (&t[..i], c.to_ascii_lowercase()),
        _ => (t, 's'),
    };
    let n: u64 = digits
        .parse()
        .map_err(|_| format!("`{text}` is not a duration like 3600, 90m, 24h or 2d"))?;
    let unit = match unit {
        's' => 1,
        'm' => 60,
        'h' => 3600,
        'd' => 86_400,
        _ => return Err(format!("`{text}`: the unit is s, m, h or d")),
    };
    n.checked_mul(unit)
        .ok_or_else(|| format!("`{text}` is too long"))
}

/// A positional object name.
#[derive(Debug, Args)]
pub struct NameArg {
    /// Name of the object
    pub name: String,
}

/// A listing with only paging options.
#[derive(Debug, Args)]
pub struct ListOnly {
    /// Paging.
    #[command(flatten)]
    pub list: ListOpts,
}

/// `cluster add`.
#[derive(Debug, Args)]
pub struct ClusterAdd {
    /// Name: lowercase letters, digits, hyphens (e.g. web-eu)
    pub name: String,
    /// Role of its servers: web, dns, mail, files or db
    #[arg(long)]
    pub role: model::Role,
    /// Free text
    #[arg(long)]
    pub description: Option<String>,
    /// Make it the default cluster of its role
    #[arg(long)]
    pub default: bool,
    /// TTL of web records in zones, seconds (default 60)
    #[arg(long, value_name = "SECONDS")]
    pub web_ttl: Option<u32>,
    /// TTL of other generated records, seconds (default 3600)
    #[arg(long, value_name = "SECONDS")]
    pub ttl: Option<u32>,
    /// DNS clusters: an external secondary (BIND, Knot, NSD ...) to notify and allow
    /// zone transfers to, as IP or IP:PORT; repeat for several
    #[arg(long = "external-secondary", value_name = "IP[:PORT]")]
    pub external_secondaries: Vec<String>,
    /// Mail clusters: the client-facing host name (clients use imap., pop. and
    /// smtp. of it, which follow the writer in DNS), e.g. mail.hosting.example
    #[arg(long, value_name = "NAME")]
    pub hostname: Option<String>,
}

/// `cluster update`.
#[derive(Debug, Args)]
pub struct ClusterUpdate {
    /// Cluster name
    pub name: String,
    /// New description
    #[arg(long)]
    pub description: Option<String>,
    /// Make (true) or stop making (false) it the default of its role
    #[arg(long, value_name = "true|false")]
    pub default: Option<bool>,
    /// New web TTL, seconds
    #[arg(long, value_name = "SECONDS")]
    pub web_ttl: Option<u32>,
    /// New default TTL, seconds
    #[arg(long, value_name = "SECONDS")]
    pub ttl: Option<u32>,
    /// Replace the external secondaries of a DNS cluster (IP or IP:PORT; repeat)
    #[arg(long = "external-secondary", value_name = "IP[:PORT]")]
    pub external_secondaries: Vec<String>,
    /// Remove every external secondary
    #[arg(long, conflicts_with = "external_secondaries")]
    pub no_external_secondaries: bool,
    /// Mail clusters: a new client-facing host name
    #[arg(long, value_name = "NAME")]
    pub hostname: Option<String>,
    /// Mail clusters: remove the client-facing host name (clients are sent to
    /// the writer's own host name)
    #[arg(long, conflicts_with = "hostname")]
    pub no_hostname: bool,
}

// ------------------------------------------------------------------ servers

/// `hostplane server ...`.
#[derive(Debug, Subcommand)]
pub enum ServerCmd {
    /// Register a server in a cluster
    #[command(visible_alias = "create")]
    Add(ServerAdd),
    /// List servers
    #[command(visible_alias = "ls")]
    List(ServerList),
    /// Show one server
    #[command(visible_alias = "get")]
    Show(NameArg),
    /// Change a server
    Update(ServerUpdate),
    /// Remove a server
    #[command(visible_alias = "rm")]
    Delete(NameArg),
    /// Join tokens: let a new server's agent join a cluster
    #[command(
        subcommand,
        after_help = "Examples:
  hostplane server token create --cluster web-eu --expires-in 2h
  hostplane server token list
  hostplane server token delete 3f2a9c0d4e5b6a71"
    )]
    Token(JoinTokenCmd),
    /// Move everything off a server before maintenance (it takes no new work)
    #[command(after_help = "Example:\n  hostplane server drain web-1")]
    Drain(NameArg),
    /// Let a drained server take work again
    #[command(after_help = "Example:\n  hostplane server undrain web-1")]
    Undrain(NameArg),
    /// Forget a server's agent identity so a new agent can join under its name
    #[command(after_help = "Example (the old agent lost its key):
  hostplane server reset-agent web-1
  hostplane server token create --cluster web-eu")]
    ResetAgent(NameArg),
    /// Stop (kill) one server of a running `hostplane up`: its agent and every
    /// process it runs (php-fpm, mariadbd, postgres)
    #[command(
        after_help = "Example:\n  hostplane server stop web-1    # then watch `hostplane server list`"
    )]
    Stop(UpServerArg),
    /// Start again one server's agent process of a running `hostplane up`
    #[command(after_help = "Example:\n  hostplane server start web-1")]
    Start(UpServerArg),
}

/// `hostplane server token ...`.
#[derive(Debug, Subcommand)]
pub enum JoinTokenCmd {
    /// Make a one-time, expiring join token for a cluster (shown once)
    #[command(visible_alias = "add")]
    Create(JoinTokenCreate),
    /// List unused join tokens (without their secrets)
    #[command(visible_alias = "ls")]
    List(ListOnly),
    /// Revoke an unused join token
    #[command(visible_alias = "rm", visible_alias = "revoke")]
    Delete(JoinTokenId),
}

/// `server token create`.
#[derive(Debug, Args)]
pub struct JoinTokenCreate {
    /// Cluster the new server joins (it takes the cluster's role)
    #[arg(long)]
    pub cluster: String,
    /// Lifetime: minutes, or a number with m, h or d (e.g. 90m, 2h, 7d; at most 7d)
    #[arg(long, value_name = "DURATION", default_value = "60m", value_parser = parse_minutes)]
    pub expires_in: u32,
    /// Server name to put in the printed agent.toml
    #[arg(long, value_name = "NAME")]
    pub name: Option<String>,
}

/// `server token delete`.
#[derive(Debug, Args)]
pub struct JoinTokenId {
    /// Token id (from `server token list`)
    pub id: String,
}

/// `server stop` / `server start`.
#[derive(Debug, Args)]
pub struct UpServerArg {
    /// Server name, e.g. web-1
    pub name: String,
    /// Data dir of the `hostplane up` to control (default: the one the CLI login came from)
    #[arg(long, value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
}

/// Parse `90`, `90m`, `2h` or `7d` into minutes.
pub fn parse_minutes(text: &str) -> Result<u32, String> {
    let t = text.trim();
    let (num, unit) = match t.char_indices().last() {
        Some((i, c)) if c.is_ascii_alphabetic() => (&t[..i], c.to_ascii_lowercase()),
        _ => (t, 'm'),
    };
    let n: u32 = num
        .trim()
        .parse()
        .map_err(|_| format!("`{text}` is not a duration: use e.g. 30m, 2h or 7d"))?;
    let factor = match unit {
        'm' => 1,
        'h' => 60,
        'd' => 24 * 60,
        _ => return Err(format!("unknown unit in `{text}`: use m, h or d")),
    };
    let minutes = n
        .checked_mul(factor)
        .ok_or_else(|| format!("`{text}` is too long"))?;
    if minutes == 0 {
        return Err("the lifetime must be at least 1 minute".into());
    }
    Ok(minutes)
}

/// `server add`.
#[derive(Debug, Args)]
pub struct ServerAdd {
    /// Name, e.g. web-1
    pub name: String,
    /// Cluster to join; the server takes its role
    #[arg(long)]
    pub cluster: String,
    /// Public host name
    #[arg(long)]
    pub hostname: String,
    /// Public IPv4/IPv6 address (repeatable, at least one)
    #[arg(long = "address", value_name = "IP", required = true)]
    pub addresses: Vec<String>,
    /// ISO 3166-1 alpha-2 country code, e.g. GB
    #[arg(long)]
    pub country: String,
    /// Rank in DNS/mail clusters: 0 primary, 1.. secondaries (default: next free)
    #[arg(long)]
    pub rank: Option<u16>,
    /// Free-form region, e.g. eu-west
    #[arg(long)]
    pub region: Option<String>,
    /// Notes on the hardware profile
    #[arg(long)]
    pub hardware: Option<String>,
    /// Allow a secondary in the same country as its primary
    #[arg(long)]
    pub force: bool,
}

/// `server list`.
#[derive(Debug, Args)]
pub struct ServerList {
    /// Only servers of this cluster
    #[arg(long)]
    pub cluster: Option<String>,
    /// Paging.
    #[command(flatten)]
    pub list: ListOpts,
}

/// `server update`.
#[derive(Debug, Args)]
pub struct ServerUpdate {
    /// Server name
    pub name: String,
    /// New rank
    #[arg(long)]
    pub rank: Option<u16>,
    /// New host name
    #[arg(long)]
    pub hostname: Option<String>,
    /// New address list (repeatable; replaces the old list)
    #[arg(long = "address", value_name = "IP")]
    pub addresses: Vec<String>,
    /// New region
    #[arg(long)]
    pub region: Option<String>,
    /// New country code
    #[arg(long)]
    pub country: Option<String>,
    /// New hardware notes
    #[arg(long)]
    pub hardware: Option<String>,
    /// Allow a same-country secondary
    #[arg(long)]
    pub force: bool,
}
