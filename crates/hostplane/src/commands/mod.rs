//! The CLI-client subcommands, one file per resource family. Each turns parsed
//! arguments into one or more typed API calls and prints the answer.

pub mod accounts;
pub mod cron;
pub mod databases;
pub mod dns;
pub mod domains;
pub mod ftp;
pub mod import;
pub mod infra;
pub mod mail;
pub mod plans;
pub mod session;
pub mod sitefiles;
pub mod sitelogs;

use crate::cli::{Command, GlobalOpts, ListOpts};
use crate::output::Output;
use proto::v1::ListParams;

/// What every subcommand needs: the global options and the output mode.
#[derive(Debug, Clone)]
pub struct Ctx {
    /// `--server`, `--ca`, `--json`.
    pub global: GlobalOpts,
    /// Printer.
    pub out: Output,
}

impl Ctx {
    /// A client of the resolved controller, with a token (or an error saying how to get one).
    pub fn api(&self) -> anyhow::Result<client::Client> {
        crate::login::resolve(&self.global)?.client(true)
    }
}

impl ListOpts {
    /// The query of the first request.
    pub fn params(&self) -> ListParams {
        ListParams {
            cursor: self.cursor.clone(),
            limit: self.limit,
            ..Default::default()
        }
    }

    /// Follow every cursor (the default), or print one page.
    pub fn fetch_all(&self) -> bool {
        self.all || (self.limit.is_none() && self.cursor.is_none())
    }
}

/// Fetch a listing: every page or one, as `ListOpts` asks.
macro_rules! listing {
    ($api:expr, $opts:expr, $params:expr, $all:ident, $page:ident) => {
        if $opts.fetch_all() {
            $crate::output::Listing::All($api.$all(&$params).await?)
        } else {
            $crate::output::Listing::Page($api.$page(&$params).await?)
        }
    };
}
pub(crate) use listing;

/// Run a client subcommand (not `controller` or `up`).
pub async fn run(ctx: &Ctx, command: Command) -> anyhow::Result<()> {
    match command {
        Command::Login(args) => session::login(ctx, args).await,
        Command::Logout => session::logout(ctx).await,
        Command::Whoami => session::whoami(ctx).await,
        Command::Status => session::status(ctx).await,
        Command::Events(args) => session::events(ctx, args).await,
        Command::Cluster(cmd) => infra::cluster(ctx, cmd).await,
        Command::Server(cmd) => infra::server(ctx, cmd).await,
        Command::Customer(cmd) => accounts::customer(ctx, cmd).await,
        Command::Plan(cmd) => plans::plan(ctx, cmd).await,
        Command::Endpoints(args) => plans::endpoints(ctx, args).await,
        Command::Token(cmd) => accounts::token(ctx, cmd).await,
        Command::Domain(cmd) => domains::domain(ctx, cmd).await,
        Command::Site(cmd) => domains::site(ctx, cmd).await,
        Command::Cron(cmd) => cron::cron(ctx, cmd).await,
        Command::Mailbox(cmd) => mail::mailbox(ctx, cmd).await,
        Command::Alias(cmd) => mail::alias(ctx, cmd).await,
        Command::Db(cmd) => databases::database(ctx, cmd).await,
        Command::Mail(cmd) => mail::mail_queue(ctx, cmd).await,
        Command::DbUser(cmd) => databases::db_user(ctx, cmd).await,
        Command::Ftp(cmd) => ftp::ftp(ctx, cmd).await,
        Command::Dns(cmd) => dns::dns(ctx, cmd).await,
        Command::Import(args) => import::import(ctx, args).await,
        Command::Controller(_) | Command::Up(_) | Command::Agent(_) | Command::Sendmail(_) => {
            anyhow::bail!(
                "internal: `controller`, `up`, `agent` and `sendmail` are not client commands"
            )
        }
    }
}

/// `Some(v)` for a non-empty list, `None` for an empty one.
pub fn non_empty<T>(v: Vec<T>) -> Option<Vec<T>> {
    if v.is_empty() {
        None
    } else {
        Some(v)
    }
}
