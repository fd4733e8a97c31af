//! `hostplane plan ...` (plans: named sets of limits), the limit options of
//! `customer update`, and `hostplane endpoints` (where a customer points DNS).

use clap::{Args, Subcommand};
use proto::v1::{CreatePlan, EndpointsView, LimitsPatch, LimitsView, PlanView, UpdatePlan};

use super::{listing, Ctx};
use crate::cli::{ListOnly, ListOpts, NameArg};
use crate::output::Render;

/// `hostplane plan ...`.
#[derive(Debug, Subcommand)]
pub enum PlanCmd {
    /// Define a plan (missing limits: the controller's default plan)
    #[command(visible_alias = "create")]
    Add(PlanAdd),
    /// List plans (admins: all; resellers: their own)
    #[command(visible_alias = "ls")]
    List(ListOnly),
    /// Show one plan
    #[command(visible_alias = "get")]
    Show(NameArg),
    /// Change a plan's limits (accounts now above a lowered limit keep what they
    /// have, cannot add more, and get a `limit.warning` event)
    Update(PlanUpdate),
    /// Delete a plan no account uses
    #[command(visible_alias = "rm")]
    Delete(NameArg),
}

/// `plan add`.
#[derive(Debug, Args)]
pub struct PlanAdd {
    /// Name: lowercase letters, digits, hyphens
    pub name: String,
    /// Free text
    #[arg(long)]
    pub description: Option<String>,
    /// Limits.
    #[command(flatten)]
    pub limits: LimitArgs,
}

/// `plan update`.
#[derive(Debug, Args)]
pub struct PlanUpdate {
    /// Plan name
    pub name: String,
    /// New description
    #[arg(long)]
    pub description: Option<String>,
    /// Limits to change.
    #[command(flatten)]
    pub limits: LimitArgs,
}

/// Limit options shared by `plan add/update` and `customer update`. Sizes in MiB;
/// quotas 1..=1048576 (1 TiB), counts 0..=1000000.
#[derive(Debug, Args, Default)]
pub struct LimitArgs {
    /// Largest mailbox quota, MiB
    #[arg(long, value_name = "MIB")]
    pub max_mailbox_quota_mb: Option<u64>,
    /// Largest FTP quota, MiB
    #[arg(long, value_name = "MIB")]
    pub max_ftp_quota_mb: Option<u64>,
    /// Most domains
    #[arg(long, value_name = "N")]
    pub max_domains: Option<u64>,
    /// Most mailboxes
    #[arg(long, value_name = "N")]
    pub max_mailboxes: Option<u64>,
    /// Most databases
    #[arg(long, value_name = "N")]
    pub max_databases: Option<u64>,
    /// Most FTP accounts
    #[arg(long, value_name = "N")]
    pub max_ftp_accounts: Option<u64>,
    /// Disk for kept `site upload` archives, MiB
    #[arg(long, value_name = "MIB")]
    pub deployment_disk_mb: Option<u64>,
    /// Disk for site files, MiB
    #[arg(long, value_name = "MIB")]
    pub site_disk_mb: Option<u64>,
    /// Outgoing messages per hour (per mailbox and per domain)
    #[arg(long, value_name = "N")]
    pub mail_messages_per_hour: Option<u64>,
    /// Recipients of one outgoing message
    #[arg(long, value_name = "N")]
    pub mail_recipients_per_message: Option<u64>,
    /// Largest PHP memory_limit a site may set, MiB (16..16384; default 512)
    #[arg(long, value_name = "MIB")]
    pub php_memory_mb: Option<u64>,
    /// Largest PHP upload_max_filesize/post_max_size, MiB (1..4096; default 256)
    #[arg(long, value_name = "MIB")]
    pub php_upload_mb: Option<u64>,
    /// Largest PHP max_execution_time/max_input_time, seconds (1..86400; default 300)
    #[arg(long, value_name = "S")]
    pub php_execution_s: Option<u64>,
    /// Most cron jobs of one site (0..1000; default 10)
    #[arg(long, value_name = "N")]
    pub cron_jobs: Option<u64>,
}

impl LimitArgs {
    /// The request body part.
    pub fn patch(&self) -> LimitsPatch {
        LimitsPatch {
            max_mailbox_quota_mb: self.max_mailbox_quota_mb,
            max_ftp_quota_mb: self.max_ftp_quota_mb,
            max_domains: self.max_domains,
            max_mailboxes: self.max_mailboxes,
            max_databases: self.max_databases,
            max_ftp_accounts: self.max_ftp_accounts,
            deployment_disk_mb: self.deployment_disk_mb,
            site_disk_mb: self.site_disk_mb,
            mail_messages_per_hour: self.mail_messages_per_hour,
            mail_recipients_per_message: self.mail_recipients_per_message,
            php_memory_mb: self.php_memory_mb,
            php_upload_mb: self.php_upload_mb,
            php_execution_s: self.php_execution_s,
            cron_jobs: self.cron_jobs,
        }
    }
}

/// `hostplane endpoints`.
#[derive(Debug, Args)]
pub struct EndpointsArgs {
    /// Only this domain
    #[arg(long)]
    pub domain: Option<String>,
    /// Paging.
    #[command(flatten)]
    pub list: ListOpts,
}

/// Run `hostplane plan ...`.
pub async fn plan(ctx: &Ctx, cmd: PlanCmd) -> anyhow::Result<()> {
    let api = ctx.api()?;
    match cmd {
        PlanCmd::Add(a) => {
            let req = CreatePlan {
                name: a.name,
                description: a.description,
                limits: a.limits.patch(),
            };
            ctx.out.one(&api.create_plan(&req).await?)
        }
        PlanCmd::List(l) => ctx.out.list(&listing!(
            api,
            l.list,
            l.list.params(),
            list_all_plans,
            list_plans
        )),
        PlanCmd::Show(n) => ctx.out.one(&api.get_plan(&n.name).await?),
        PlanCmd::Update(u) => {
            let req = UpdatePlan {
                description: u.description,
                limits: u.limits.patch(),
            };
            ctx.out.one(&api.update_plan(&u.name, &req).await?)
        }
        PlanCmd::Delete(n) => {
            api.delete_plan(&n.name).await?;
            ctx.out.deleted("plan", &n.name)
        }
    }
}

/// Run `hostplane endpoints`.
pub async fn endpoints(ctx: &Ctx, args: EndpointsArgs) -> anyhow::Result<()> {
    let api = ctx.api()?;
    let mut params = args.list.params();
    params.domain = args.domain;
    ctx.out.list(&listing!(
        api,
        args.list,
        params,
        list_all_endpoints,
        list_endpoints
    ))
}

/// Limits as `name: value` lines.
pub fn limit_fields(l: &LimitsView) -> Vec<(&'static str, String)> {
    vec![
        (
            "max mailbox quota",
            format!("{} MiB", l.max_mailbox_quota_mb),
        ),
        ("max FTP quota", format!("{} MiB", l.max_ftp_quota_mb)),
        ("max domains", l.max_domains.to_string()),
        ("max mailboxes", l.max_mailboxes.to_string()),
        ("max databases", l.max_databases.to_string()),
        ("max FTP accounts", l.max_ftp_accounts.to_string()),
        ("deployment disk", format!("{} MiB", l.deployment_disk_mb)),
        ("site disk", format!("{} MiB", l.site_disk_mb)),
        ("mail per hour", l.mail_messages_per_hour.to_string()),
        (
            "recipients per mail",
            l.mail_recipients_per_message.to_string(),
        ),
        ("php memory", format!("{} MiB", l.php_memory_mb)),
        ("php upload", format!("{} MiB", l.php_upload_mb)),
        ("php execution", format!("{} s", l.php_execution_s)),
        ("cron jobs per site", l.cron_jobs.to_string()),
    ]
}

impl Render for PlanView {
    const HEADERS: &'static [&'static str] = &[
        "name",
        "reseller",
        "domains",
        "mailboxes",
        "databases",
        "accounts",
    ];
    fn cells(&self) -> Vec<String> {
        vec![
            self.name.clone(),
            self.reseller.clone().unwrap_or_else(|| "-".into()),
            self.limits.max_domains.to_string(),
            self.limits.max_mailboxes.to_string(),
            self.limits.max_databases.to_string(),
            self.accounts.to_string(),
        ]
    }
    fn fields(&self) -> Vec<(&'static str, String)> {
        let mut f = vec![
            ("name", self.name.clone()),
            (
                "reseller",
                self.reseller.clone().unwrap_or_else(|| "-".into()),
            ),
            ("description", self.description.clone()),
        ];
        f.extend(limit_fields(&self.limits));
        f.push(("accounts", self.accounts.to_string()));
        f.push(("created", self.created_at.clone()));
        f
    }
}

impl Render for EndpointsView {
    const HEADERS: &'static [&'static str] = &["domain", "web", "dns", "mail", "ftp", "databases"];
    fn cells(&self) -> Vec<String> {
        vec![
            self.domain.clone(),
            self.web.join(" "),
            self.dns.join(" "),
            self.mail.join(" "),
            self.ftp.join(" "),
            self.databases
                .iter()
                .map(|(db, hosts)| format!("{db}@{}", hosts.join(",")))
                .collect::<Vec<_>>()
                .join(" "),
        ]
    }
    fn fields(&self) -> Vec<(&'static str, String)> {
        let c = self.cells();
        Self::HEADERS.iter().copied().zip(c).collect()
    }
}
