//! `hostplane cron …`: a site's cron jobs (issue 15).

use clap::{Args, Subcommand};

/// `cron` subcommands.
#[derive(Debug, Subcommand)]
pub enum CronCmd {
    /// Add a job: a schedule (5 fields, UTC, or @hourly/@daily/…) and a command
    #[command(
        after_help = "A command is `php SCRIPT [ARGS]` (SCRIPT inside the site, run with the
site's PHP settings as the site's user; no shell) or `GET /path` (a request to the site).
Exactly one web server of the site's cluster runs the site's jobs; a run still going
when the job is due again is skipped, and a run longer than the plan's php_execution_s
is killed. Each run is one line in the site's cron.log.

Examples:
  hostplane cron add example.com \"*/5 * * * *\" \"php wp-cron.php\"
  hostplane cron add example.com @daily \"php bin/console app:cleanup --days 30\"
  hostplane cron add example.com \"0 3 * * mon-fri\" \"GET /cron.php?key=abc\""
    )]
    Add(CronAdd),
    /// List a site's jobs with their next run and the server running them
    #[command(after_help = "Examples:
  hostplane cron list example.com
  hostplane cron list example.com --json")]
    List(CronSite),
    /// Delete a job by its id (from `cron list`)
    #[command(after_help = "Examples:
  hostplane cron delete example.com 3")]
    Delete(CronDelete),
}

/// `cron add`.
#[derive(Debug, Args)]
pub struct CronAdd {
    /// The site's domain
    pub domain: String,
    /// Schedule: `minute hour day-of-month month day-of-week` or a macro
    pub schedule: String,
    /// Command: `php SCRIPT [ARGS]` or `GET /path`
    pub command: String,
}

/// `cron list`.
#[derive(Debug, Args)]
pub struct CronSite {
    /// The site's domain
    pub domain: String,
}

/// `cron delete`.
#[derive(Debug, Args)]
pub struct CronDelete {
    /// The site's domain
    pub domain: String,
    /// The job's id
    pub id: u32,
}
