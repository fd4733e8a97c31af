//! `hostplane cron add | list | delete`: a site's cron jobs (issue 15).

use proto::v1::{CreateCronJob, CronJobView};

use super::Ctx;
use crate::cli::CronCmd;
use crate::output::{Listing, Render};

impl Render for CronJobView {
    const HEADERS: &'static [&'static str] = &["id", "schedule", "command", "next run", "server"];
    fn cells(&self) -> Vec<String> {
        vec![
            self.id.to_string(),
            self.schedule.clone(),
            self.command.clone(),
            self.next_run.clone().unwrap_or_default(),
            self.server.clone().unwrap_or_else(|| "none usable".into()),
        ]
    }
    fn fields(&self) -> Vec<(&'static str, String)> {
        Self::HEADERS.iter().copied().zip(self.cells()).collect()
    }
}

/// Run a `cron` subcommand.
pub async fn cron(ctx: &Ctx, cmd: CronCmd) -> anyhow::Result<()> {
    let api = ctx.api()?;
    match cmd {
        CronCmd::Add(a) => {
            let req = CreateCronJob {
                schedule: a.schedule,
                command: a.command,
            };
            ctx.out.one(&api.create_cron_job(&a.domain, &req).await?)
        }
        CronCmd::List(l) => ctx
            .out
            .list(&Listing::All(api.list_cron_jobs(&l.domain).await?)),
        CronCmd::Delete(d) => {
            api.delete_cron_job(&d.domain, d.id).await?;
            ctx.out
                .deleted("cron job", &format!("{} {}", d.domain, d.id))
        }
    }
}
