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
    /// The sendmail command of web servers: PHP's mail() runs it as the site's user
    /// (set in every site's `sendmail_path`); it hands the message to the local
    /// web engine, which spools it for the site's mail cluster
    #[command(
        after_help = "Accepts -t, -i, -oi, -f SENDER, -r SENDER, -F NAME and recipients; reads the message on stdin.
Example (what the web engine puts in sendmail_path):
  hostplane sendmail --socket /var/lib/hostplane/engines/web/php/sendmail.sock -t -i"
    )]
    Sendmail(SendmailArgs),
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
    /// Run PHP scripts or site URLs on a schedule (one web server per site runs them)
    #[command(
        subcommand,
        after_help = "Examples:
  hostplane cron add example.com \"*/5 * * * *\" \"php wp-cron.php\"
  hostplane cron list example.com
  hostplane cron delete example.com 1"
    )]
    Cron(CronCmd),
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

mod accounts;
mod cron;
mod infra;
mod services;

pub use accounts::*;
pub use cron::*;
pub use infra::*;
pub use services::*;

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

/// `hostplane sendmail`'s arguments, sendmail's syntax (parsed by
/// `role_web::mailer::client`, before clap sees them: see `main`).
#[derive(Debug, clap::Args)]
pub struct SendmailArgs {
    /// sendmail options and recipients
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    pub args: Vec<String>,
}
