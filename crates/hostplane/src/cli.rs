//! Command-line syntax (clap derive): every subcommand, flag and help text.

use clap::{Args, Parser, Subcommand};
use std::net::SocketAddr;
use std::path::PathBuf;

const MAIN_EXAMPLES: &str = "\
Examples:
  hostplane up                                   # a whole platform on this machine
  hostplane domain add example.com --customer acme
  hostplane mailbox add info@example.com
  hostplane dns add example.com www A 192.0.2.1 --ttl 300
  hostplane domain list --json

Connection: `hostplane login` saves the server, token and CA (file: $HOSTPLANE_CONFIG,
default ~/.config/hostplane/cli.toml); HOSTPLANE_URL, HOSTPLANE_TOKEN and HOSTPLANE_CA
override it.";

/// hostplane: a clustered web-hosting control plane.
#[derive(Debug, Parser)]
#[command(
    name = "hostplane",
    version,
    about = "hostplane: a clustered web-hosting control plane (controller, CLI)",
    after_help = MAIN_EXAMPLES,
    propagate_version = true,
    subcommand_required = true,
    arg_required_else_help = true
)]
pub struct Cli {
    /// Options every command accepts.
    #[command(flatten)]
    pub global: GlobalOpts,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// Options every command accepts.
#[derive(Debug, Clone, Args)]
pub struct GlobalOpts {
    /// Controller API URL, e.g. https://127.0.0.1:8443 (default: the saved login)
    #[arg(long, global = true, env = "HOSTPLANE_URL", value_name = "URL")]
    pub server: Option<String>,
    /// CA certificate (PEM) that signed the controller's certificate
    #[arg(long, global = true, env = "HOSTPLANE_CA", value_name = "FILE")]
    pub ca: Option<PathBuf>,
    /// Print JSON instead of tables (listings: an array, or the page with --limit)
    #[arg(long, global = true)]
    pub json: bool,
}

/// Every subcommand.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Create or run a controller (the control plane and its REST API)
    #[command(
        subcommand,
        after_help = "Examples:
  hostplane controller init --data-dir /var/lib/hostplane --listen 0.0.0.0:8443 --name cp.example.net
  hostplane controller run --config /var/lib/hostplane/controller.toml"
    )]
    Controller(ControllerCmd),
    /// Run a whole platform on this machine: the controller and one agent per server
    #[command(after_help = "Examples:
  hostplane up
  hostplane up --web 3 --data-dir /tmp/hp --listen 127.0.0.1:9443
  hostplane up --listen 127.0.0.1:0 --address-base 127.0.7 --health-interval-ms 200
Then, from another shell: `hostplane status`, `hostplane server stop web-1`, `hostplane server start web-1`.")]
    Up(UpArgs),
    /// Run a server's agent: join the cluster, apply desired config, send heartbeats
    #[command(after_help = "Examples:
  hostplane agent --config /etc/hostplane/agent.toml
  RUST_LOG=debug hostplane agent --config ./agent.toml
Runs until Ctrl-C or SIGTERM. `hostplane server token create --cluster NAME` prints a config to start from.")]
    Agent(AgentArgs),
    /// Save the controller URL, CA and a token for later commands
    #[command(after_help = "Examples:
  hostplane login --server https://127.0.0.1:8443 --ca ./data/ca.pem --token hp_...
  echo \"$PASSWORD\" | hostplane login --server https://cp.example.net:8443 --ca ca.pem --account acme")]
    Login(LoginArgs),
    /// Forget the saved login (revokes the token if `login --account` made it)
    #[command(after_help = "Example:\n  hostplane logout")]
    Logout,
    /// Show the account the current token acts as
    #[command(after_help = "Examples:\n  hostplane whoami\n  hostplane whoami --json")]
    Whoami,
    /// Show the controller's version, revision, object counts, clusters and servers
    #[command(after_help = "Examples:\n  hostplane status\n  hostplane status --json")]
    Status,
    /// Manage role clusters (web, dns, mail, files, db)
    #[command(
        subcommand,
        after_help = "Examples:
  hostplane cluster add web-eu --role web --default
  hostplane cluster update web-eu --web-ttl 30
  hostplane cluster list
  hostplane cluster tsig show dns-eu     # TSIG key + BIND/Knot config for external secondaries"
    )]
    Cluster(ClusterCmd),
    /// Manage servers (members of clusters)
    #[command(
        subcommand,
        after_help = "Examples:
  hostplane server add ns1 --cluster dns-main --hostname ns1.example.net --address 192.0.2.21 --country GB
  hostplane server list --cluster dns-main
  hostplane server update ns1 --region eu-west
  hostplane server token create --cluster web-eu
  hostplane server drain web-1
  hostplane server stop web-1      # servers of a running `hostplane up`"
    )]
    Server(ServerCmd),
    /// Manage customer, reseller and admin accounts
    #[command(
        subcommand,
        after_help = "Examples:
  hostplane customer add acme --display-name \"ACME Ltd\" --email ops@acme.example
  hostplane customer update acme --default-cluster web=web-eu
  hostplane customer update acme --disabled true
  hostplane customer update acme --plan small --max-domains 20 --clear-limit max_mailboxes"
    )]
    Customer(CustomerCmd),
    /// Manage plans (limits of customer accounts)
    #[command(
        subcommand,
        after_help = "Examples:
  hostplane plan add small --max-domains 5 --max-mailboxes 50 --max-mailbox-quota-mb 2048
  hostplane plan list --json
  hostplane plan update small --max-domains 3
  hostplane customer update acme --plan small --max-mailboxes 80"
    )]
    Plan(crate::commands::plans::PlanCmd),
    /// Where to point DNS and clients: your domains' web addresses, name, mail,
    /// FTP and database servers
    #[command(after_help = "Examples:
  hostplane endpoints
  hostplane endpoints --domain example.com --json")]
    Endpoints(crate::commands::plans::EndpointsArgs),
    /// Manage API tokens
    #[command(
        subcommand,
        after_help = "Examples:
  hostplane token create laptop --expires-in-days 90
  hostplane token create acme-ci --account acme
  hostplane token revoke tok_123"
    )]
    Token(TokenCmd),
    /// Manage domains and their placement on clusters
    #[command(
        subcommand,
        after_help = "Examples:
  hostplane domain add example.com --customer acme
  hostplane domain add example.org --customer acme --cluster web=web-eu --cluster dns=dns-main
  hostplane domain update example.org --cluster web=web-us
  hostplane domain challenge www.example.com       # TXT record proving you control example.com
  hostplane domain transfer example.com --to acme  # admins: give example.com's names to acme"
    )]
    Domain(DomainCmd),
    /// Manage sites (the web part of a domain)
    #[command(
        subcommand,
        after_help = "Examples:
  hostplane site add example.com --php --alias www.example.com
  hostplane site update example.com --mode all --https-redirect true
  hostplane site list --domain example.com"
    )]
    Site(SiteCmd),
    /// Manage mailboxes
    #[command(
        subcommand,
        after_help = "Examples:
  hostplane mailbox add info@example.com                 # prints a generated password once
  hostplane mailbox add bob@example.com --quota-mb 2048 --display-name Bob
  hostplane mailbox update bob@example.com --enabled false"
    )]
    Mailbox(MailboxCmd),
    /// Manage mail aliases and forwards
    #[command(
        subcommand,
        after_help = "Examples:
  hostplane alias add sales@example.com info@example.com bob@elsewhere.example
  hostplane alias update sales@example.com info@example.com
  hostplane alias list --domain example.com"
    )]
    Alias(AliasCmd),
    /// Manage customer databases
    #[command(
        subcommand,
        after_help = "Examples:
  hostplane db add shop --engine mariadb --customer acme --domain example.com
  hostplane db list --customer acme
  hostplane db update shop --domain \"\"                # unlink
  hostplane db delete shop                            # a dump stays in the server's trash
  hostplane db trash                                  # dumps you can restore
  hostplane db restore shop-20261126T101500Z           # back under its old name"
    )]
    Db(DbCmd),
    /// Look at and retry the mail servers' queues; check a domain's mail setup
    #[command(
        subcommand,
        after_help = "Examples:
  hostplane mail queue            # what each mail server still has to deliver
  hostplane mail flush            # retry every queue now
  hostplane mail check example.com   # SPF, DKIM, DMARC, MX, HELO names and PTRs"
    )]
    Mail(MailCmd),
    /// Manage database users and their grants
    #[command(
        subcommand,
        after_help = "Examples:
  hostplane db-user add shop_rw --customer acme --database shop
  hostplane db-user add reporting --engine postgres --customer acme
  hostplane db-user update shop_rw --database shop --database shop_test
  hostplane db-user delete shop_rw"
    )]
    DbUser(DbUserCmd),
    /// Manage FTP accounts
    #[command(
        subcommand,
        after_help = "Examples:
  hostplane ftp add acme-web --domain example.com
  hostplane ftp add acme-img --domain example.com --home images --quota-mb 500
  hostplane ftp update acme-img --password 'a long new password'"
    )]
    Ftp(FtpCmd),
    /// Manage DNS records of a domain's zone
    #[command(
        subcommand,
        after_help = "Examples:
  hostplane dns add example.com www A 192.0.2.1 --ttl 300
  hostplane dns add example.com @ MX 10 mx.example.net
  hostplane dns add example.com @ TXT \"v=spf1 -all\"
  hostplane dns list example.com"
    )]
    Dns(DnsCmd),
    /// Bulk import customers, domains, sites, mail, DNS records, FTP accounts and databases from NDJSON
    #[command(after_help = "Examples:
  hostplane import accounts.ndjson              # validate everything, then write in batches
  hostplane import accounts.ndjson --dry-run    # validate only
  hostplane import accounts.ndjson --json       # every line's outcome as JSON

One JSON object per line, each with a `kind`: customer, domain, site, mailbox, alias,
dns_record, ftp_account, database, db_user (schema: docs/import.md). Passwords come as hashes: argon2,
SHA512-crypt ($6$), SHA256-crypt ($5$), MD5-crypt ($1$) or bcrypt ($2a$/$2b$/$2y$);
each is rehashed to argon2id at the first right login. Re-running skips what exists
identically and refuses what differs, showing the difference. Admins only.")]
    Import(ImportArgs),
    /// Show the audit log (who changed what, at which revision)
    #[command(
        after_help = "Examples:\n  hostplane events\n  hostplane events --limit 20\n  hostplane events --all --json"
    )]
    Events(EventsArgs),
}

/// Paging options of every listing.
#[derive(Debug, Clone, Default, Args)]
pub struct ListOpts {
    /// Show one page of at most N items (default: every item)
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=1000))]
    pub limit: Option<u32>,
    /// Continue a listing from this cursor (printed after a page)
    #[arg(long, value_name = "CURSOR")]
    pub cursor: Option<String>,
    /// Fetch every page (the default unless --limit or --cursor is given)
    #[arg(long)]
    pub all: bool,
}

/// The command definition, with each group's examples also shown by its
/// subcommands that have none of their own (`cluster add --help` shows the
/// `cluster` examples).
pub fn command() -> clap::Command {
    fn inherit(cmd: clap::Command) -> clap::Command {
        let parent_help = cmd.get_after_help().cloned();
        let names: Vec<String> = cmd
            .get_subcommands()
            .map(|s| s.get_name().to_owned())
            .collect();
        names.into_iter().fold(cmd, |cmd, name| {
            let help = parent_help.clone();
            cmd.mut_subcommand(name, move |sub| {
                let sub = match (&help, sub.get_after_help()) {
                    (Some(h), None) => sub.after_help(h.clone()),
                    _ => sub,
                };
                inherit(sub)
            })
        })
    }
    let root = <Cli as clap::CommandFactory>::command();
    let names: Vec<String> = root
        .get_subcommands()
        .map(|s| s.get_name().to_owned())
        .collect();
    // The top level's examples are too general for subcommands: start one level down.
    names
        .into_iter()
        .fold(root, |cmd, name| cmd.mut_subcommand(name, inherit))
}

/// Parse the process arguments (exit 2 with usage on error).
pub fn parse() -> Cli {
    let matches = command().get_matches();
    match <Cli as clap::FromArgMatches>::from_arg_matches(&matches) {
        Ok(cli) => cli,
        Err(e) => e.format(&mut command()).exit(),
    }
}

/// A `ROLE=CLUSTER` pair.
pub fn parse_role_cluster(s: &str) -> Result<(String, String), String> {
    let (role, cluster) = s
        .split_once('=')
        .ok_or_else(|| format!("expected ROLE=CLUSTER such as web=web-eu, got `{s}`"))?;
    let role = role.trim();
    role.parse::<model::Role>().map_err(|e| e.to_string())?;
    let cluster = cluster.trim();
    if cluster.is_empty() {
        return Err(format!("no cluster name after `{role}=`"));
    }
    Ok((role.to_ascii_lowercase(), cluster.to_owned()))
}

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
    Update(CustomerUpdate),
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
  hostplane site cert delete example.com     # back to the internal CA's certificate"
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

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn command_definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn every_subcommand_has_an_about() {
        fn walk(cmd: &clap::Command, path: &str) {
            for sub in cmd.get_subcommands() {
                let p = format!("{path} {}", sub.get_name());
                assert!(sub.get_about().is_some(), "`{p}` has no about");
                walk(sub, &p);
            }
        }
        walk(&Cli::command(), "hostplane");
    }

    #[test]
    fn every_subcommand_has_examples() {
        fn walk(cmd: &clap::Command, path: &str) {
            for sub in cmd.get_subcommands().filter(|s| s.get_name() != "help") {
                let p = format!("{path} {}", sub.get_name());
                let help = sub
                    .get_after_help()
                    .map(ToString::to_string)
                    .unwrap_or_default();
                assert!(help.contains("hostplane "), "`{p}` has no examples");
                walk(sub, &p);
            }
        }
        walk(&command(), "hostplane");
    }

    #[test]
    fn parses_domain_add_with_clusters() {
        let cli = Cli::try_parse_from([
            "hostplane",
            "domain",
            "add",
            "example.com",
            "--customer",
            "acme",
            "--cluster",
            "web=web-eu",
            "--cluster",
            "DNS=dns-main",
            "--json",
        ])
        .unwrap();
        assert!(cli.global.json);
        let Command::Domain(DomainCmd::Add(add)) = cli.command else {
            panic!("wrong command")
        };
        assert_eq!(add.customer.as_deref(), Some("acme"));
        assert_eq!(
            add.clusters,
            [
                ("web".into(), "web-eu".into()),
                ("dns".into(), "dns-main".into())
            ]
        );
    }

    #[test]
    fn rejects_bad_role_cluster_pairs() {
        for bad in ["web", "cdn=x", "web="] {
            let res = Cli::try_parse_from([
                "hostplane",
                "domain",
                "add",
                "example.com",
                "--cluster",
                bad,
            ]);
            let err = res.unwrap_err();
            assert_eq!(err.exit_code(), 2, "{bad}");
        }
    }

    #[test]
    fn parses_dns_records_with_dashes_and_aliases() {
        let cli = Cli::try_parse_from([
            "hostplane",
            "dns",
            "create",
            "example.com",
            "@",
            "TXT",
            "v=spf1 -all",
            "--ttl",
            "300",
        ])
        .unwrap();
        let Command::Dns(DnsCmd::Add(add)) = cli.command else {
            panic!("wrong command")
        };
        assert_eq!(add.name, "@");
        assert_eq!(add.data, ["v=spf1 -all"]);
        assert_eq!(add.ttl, Some(300));
        let cli = Cli::try_parse_from(["hostplane", "dns", "rm", "12"]).unwrap();
        assert!(matches!(
            cli.command,
            Command::Dns(DnsCmd::Delete(IdArg { id: 12 }))
        ));
    }

    #[test]
    fn listing_limits_are_bounded() {
        assert!(Cli::try_parse_from(["hostplane", "domain", "list", "--limit", "0"]).is_err());
        let cli = Cli::try_parse_from(["hostplane", "domain", "ls", "--limit", "5"]).unwrap();
        let Command::Domain(DomainCmd::List(l)) = cli.command else {
            panic!("wrong command")
        };
        assert_eq!(l.list.limit, Some(5));
    }
}

/// `hostplane import`.
#[derive(Debug, Clone, clap::Args)]
pub struct ImportArgs {
    /// NDJSON file (`-` reads standard input)
    pub file: std::path::PathBuf,
    /// Check every line and write nothing
    #[arg(long)]
    pub dry_run: bool,
    /// Lines per batch (one transaction each)
    #[arg(long, default_value_t = 2000, value_parser = clap::value_parser!(u32).range(1..=100_000))]
    pub batch: u32,
    /// Write the lines that pass even when others were refused by the validation
    #[arg(long)]
    pub partial: bool,
}
