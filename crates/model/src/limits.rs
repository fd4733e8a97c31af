//! Plans and limits: what one customer account may hold and send.
//!
//! A [`Limits`] is a complete set of limits (a plan's, or the controller's default
//! plan); [`LimitOverrides`] are an account's per-field exceptions. The effective
//! limits of an account are [`effective_limits`] of its plan (or the default plan)
//! and its overrides. Every value has a documented range ([`LimitField::range`]);
//! sizes are MiB, never 0 for "unlimited".
//!
//! Pure: no I/O, so the API, the config builder and the mail engine agree.

use serde::{Deserialize, Serialize};
use std::ops::RangeInclusive;

/// 1 TiB in MiB: the largest size any limit or quota may have.
pub const MAX_SIZE_MB: u64 = 1 << 20;

/// Largest count limit (domains, mailboxes, databases, FTP accounts).
pub const MAX_COUNT: u64 = 1_000_000;

/// Range of a mailbox or FTP quota a customer may set (1 MiB .. 1 TiB); the upper
/// end is further bounded by the account's limit.
pub const QUOTA_RANGE_MB: RangeInclusive<u64> = 1..=MAX_SIZE_MB;

/// A complete set of limits of one account.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Limits {
    /// Largest quota (MiB) of one mailbox.
    pub max_mailbox_quota_mb: u64,
    /// Largest quota (MiB) of one FTP account.
    pub max_ftp_quota_mb: u64,
    /// Most domains the account may hold.
    pub max_domains: u64,
    /// Most mailboxes over all its domains.
    pub max_mailboxes: u64,
    /// Most databases.
    pub max_databases: u64,
    /// Most FTP accounts over all its domains.
    pub max_ftp_accounts: u64,
    /// Disk (MiB) the controller keeps for its uploaded site deployments (the last
    /// three archives of each site count).
    pub deployment_disk_mb: u64,
    /// Disk (MiB) for its sites' files.
    pub site_disk_mb: u64,
    /// Outgoing messages per hour, per mailbox and per domain.
    pub mail_messages_per_hour: u64,
    /// Recipients of one outgoing message.
    pub mail_recipients_per_message: u64,
    /// Largest PHP `memory_limit` (MiB) a site may set (issue 15). Plans stored
    /// before it take the default.
    #[serde(default = "default_php_memory_mb")]
    pub php_memory_mb: u64,
    /// Largest PHP `upload_max_filesize` / `post_max_size` (MiB) a site may set.
    #[serde(default = "default_php_upload_mb")]
    pub php_upload_mb: u64,
    /// Largest PHP `max_execution_time` / `max_input_time` (seconds) a site may set.
    #[serde(default = "default_php_execution_s")]
    pub php_execution_s: u64,
    /// Most cron jobs of one site (issue 15); each run is bounded by
    /// `php_execution_s`. Plans stored before it take the default.
    #[serde(default = "default_cron_jobs")]
    pub cron_jobs: u64,
}

fn default_php_memory_mb() -> u64 {
    Limits::default().php_memory_mb
}
fn default_php_upload_mb() -> u64 {
    Limits::default().php_upload_mb
}
fn default_php_execution_s() -> u64 {
    Limits::default().php_execution_s
}
fn default_cron_jobs() -> u64 {
    Limits::default().cron_jobs
}

impl Default for Limits {
    /// The default plan's documented defaults (also the controller config's).
    fn default() -> Self {
        Self {
            max_mailbox_quota_mb: 10_240,
            max_ftp_quota_mb: 10_240,
            max_domains: 100,
            max_mailboxes: 1_000,
            max_databases: 100,
            max_ftp_accounts: 100,
            deployment_disk_mb: 2_048,
            site_disk_mb: 10_240,
            mail_messages_per_hour: 1_000,
            mail_recipients_per_message: 100,
            php_memory_mb: 512,
            php_upload_mb: 256,
            php_execution_s: 300,
            cron_jobs: 10,
        }
    }
}

/// Per-account exceptions to its plan; `None` keeps the plan's value.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LimitOverrides {
    /// See [`Limits::max_mailbox_quota_mb`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_mailbox_quota_mb: Option<u64>,
    /// See [`Limits::max_ftp_quota_mb`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_ftp_quota_mb: Option<u64>,
    /// See [`Limits::max_domains`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_domains: Option<u64>,
    /// See [`Limits::max_mailboxes`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_mailboxes: Option<u64>,
    /// See [`Limits::max_databases`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_databases: Option<u64>,
    /// See [`Limits::max_ftp_accounts`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_ftp_accounts: Option<u64>,
    /// See [`Limits::deployment_disk_mb`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deployment_disk_mb: Option<u64>,
    /// See [`Limits::site_disk_mb`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub site_disk_mb: Option<u64>,
    /// See [`Limits::mail_messages_per_hour`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mail_messages_per_hour: Option<u64>,
    /// See [`Limits::mail_recipients_per_message`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mail_recipients_per_message: Option<u64>,
    /// See [`Limits::php_memory_mb`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub php_memory_mb: Option<u64>,
    /// See [`Limits::php_upload_mb`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub php_upload_mb: Option<u64>,
    /// See [`Limits::php_execution_s`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub php_execution_s: Option<u64>,
    /// See [`Limits::cron_jobs`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cron_jobs: Option<u64>,
}

impl LimitOverrides {
    /// Whether no field is overridden.
    pub fn is_empty(&self) -> bool {
        *self == Self::default()
    }
}

/// One limit, for naming it in errors and iterating over all of them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LimitField {
    /// [`Limits::max_mailbox_quota_mb`]
    MaxMailboxQuotaMb,
    /// [`Limits::max_ftp_quota_mb`]
    MaxFtpQuotaMb,
    /// [`Limits::max_domains`]
    MaxDomains,
    /// [`Limits::max_mailboxes`]
    MaxMailboxes,
    /// [`Limits::max_databases`]
    MaxDatabases,
    /// [`Limits::max_ftp_accounts`]
    MaxFtpAccounts,
    /// [`Limits::deployment_disk_mb`]
    DeploymentDiskMb,
    /// [`Limits::site_disk_mb`]
    SiteDiskMb,
    /// [`Limits::mail_messages_per_hour`]
    MailMessagesPerHour,
    /// [`Limits::mail_recipients_per_message`]
    MailRecipientsPerMessage,
    /// [`Limits::php_memory_mb`]
    PhpMemoryMb,
    /// [`Limits::php_upload_mb`]
    PhpUploadMb,
    /// [`Limits::php_execution_s`]
    PhpExecutionS,
    /// [`Limits::cron_jobs`]
    CronJobs,
}

impl LimitField {
    /// Every limit.
    pub const ALL: [LimitField; 14] = [
        LimitField::MaxMailboxQuotaMb,
        LimitField::MaxFtpQuotaMb,
        LimitField::MaxDomains,
        LimitField::MaxMailboxes,
        LimitField::MaxDatabases,
        LimitField::MaxFtpAccounts,
        LimitField::DeploymentDiskMb,
        LimitField::SiteDiskMb,
        LimitField::MailMessagesPerHour,
        LimitField::MailRecipientsPerMessage,
        LimitField::PhpMemoryMb,
        LimitField::PhpUploadMb,
        LimitField::PhpExecutionS,
        LimitField::CronJobs,
    ];

    /// The field name (as in JSON and on the command line with `-` for `_`).
    pub fn as_str(self) -> &'static str {
        match self {
            LimitField::MaxMailboxQuotaMb => "max_mailbox_quota_mb",
            LimitField::MaxFtpQuotaMb => "max_ftp_quota_mb",
            LimitField::MaxDomains => "max_domains",
            LimitField::MaxMailboxes => "max_mailboxes",
            LimitField::MaxDatabases => "max_databases",
            LimitField::MaxFtpAccounts => "max_ftp_accounts",
            LimitField::DeploymentDiskMb => "deployment_disk_mb",
            LimitField::SiteDiskMb => "site_disk_mb",
            LimitField::MailMessagesPerHour => "mail_messages_per_hour",
            LimitField::MailRecipientsPerMessage => "mail_recipients_per_message",
            LimitField::PhpMemoryMb => "php_memory_mb",
            LimitField::PhpUploadMb => "php_upload_mb",
            LimitField::PhpExecutionS => "php_execution_s",
            LimitField::CronJobs => "cron_jobs",
        }
    }

    /// The values this limit may take.
    pub fn range(self) -> RangeInclusive<u64> {
        match self {
            LimitField::MaxMailboxQuotaMb | LimitField::MaxFtpQuotaMb => QUOTA_RANGE_MB,
            LimitField::DeploymentDiskMb | LimitField::SiteDiskMb => 0..=MAX_SIZE_MB,
            LimitField::MaxDomains
            | LimitField::MaxMailboxes
            | LimitField::MaxDatabases
            | LimitField::MaxFtpAccounts
            | LimitField::MailMessagesPerHour => 0..=MAX_COUNT,
            LimitField::MailRecipientsPerMessage => 1..=10_000,
            LimitField::PhpMemoryMb => 16..=16_384,
            LimitField::PhpUploadMb => 1..=4_096,
            LimitField::PhpExecutionS => 1..=86_400,
            LimitField::CronJobs => 0..=1_000,
        }
    }

    /// This limit's value in `l`.
    pub fn get(self, l: &Limits) -> u64 {
        match self {
            LimitField::MaxMailboxQuotaMb => l.max_mailbox_quota_mb,
            LimitField::MaxFtpQuotaMb => l.max_ftp_quota_mb,
            LimitField::MaxDomains => l.max_domains,
            LimitField::MaxMailboxes => l.max_mailboxes,
            LimitField::MaxDatabases => l.max_databases,
            LimitField::MaxFtpAccounts => l.max_ftp_accounts,
            LimitField::DeploymentDiskMb => l.deployment_disk_mb,
            LimitField::SiteDiskMb => l.site_disk_mb,
            LimitField::MailMessagesPerHour => l.mail_messages_per_hour,
            LimitField::MailRecipientsPerMessage => l.mail_recipients_per_message,
            LimitField::PhpMemoryMb => l.php_memory_mb,
            LimitField::PhpUploadMb => l.php_upload_mb,
            LimitField::PhpExecutionS => l.php_execution_s,
            LimitField::CronJobs => l.cron_jobs,
        }
    }

    /// Mutable access to this limit's value in `l`.
    pub fn get_mut(self, l: &mut Limits) -> &mut u64 {
        match self {
            LimitField::MaxMailboxQuotaMb => &mut l.max_mailbox_quota_mb,
            LimitField::MaxFtpQuotaMb => &mut l.max_ftp_quota_mb,
            LimitField::MaxDomains => &mut l.max_domains,
            LimitField::MaxMailboxes => &mut l.max_mailboxes,
            LimitField::MaxDatabases => &mut l.max_databases,
            LimitField::MaxFtpAccounts => &mut l.max_ftp_accounts,
            LimitField::DeploymentDiskMb => &mut l.deployment_disk_mb,
            LimitField::SiteDiskMb => &mut l.site_disk_mb,
            LimitField::MailMessagesPerHour => &mut l.mail_messages_per_hour,
            LimitField::MailRecipientsPerMessage => &mut l.mail_recipients_per_message,
            LimitField::PhpMemoryMb => &mut l.php_memory_mb,
            LimitField::PhpUploadMb => &mut l.php_upload_mb,
            LimitField::PhpExecutionS => &mut l.php_execution_s,
            LimitField::CronJobs => &mut l.cron_jobs,
        }
    }

    /// This limit's override in `o`.
    pub fn get_override(self, o: &LimitOverrides) -> Option<u64> {
        let mut copy = *o;
        *self.override_mut(&mut copy)
    }

    /// Mutable access to this limit's override in `o`.
    pub fn override_mut(self, o: &mut LimitOverrides) -> &mut Option<u64> {
        match self {
            LimitField::MaxMailboxQuotaMb => &mut o.max_mailbox_quota_mb,
            LimitField::MaxFtpQuotaMb => &mut o.max_ftp_quota_mb,
            LimitField::MaxDomains => &mut o.max_domains,
            LimitField::MaxMailboxes => &mut o.max_mailboxes,
            LimitField::MaxDatabases => &mut o.max_databases,
            LimitField::MaxFtpAccounts => &mut o.max_ftp_accounts,
            LimitField::DeploymentDiskMb => &mut o.deployment_disk_mb,
            LimitField::SiteDiskMb => &mut o.site_disk_mb,
            LimitField::MailMessagesPerHour => &mut o.mail_messages_per_hour,
            LimitField::MailRecipientsPerMessage => &mut o.mail_recipients_per_message,
            LimitField::PhpMemoryMb => &mut o.php_memory_mb,
            LimitField::PhpUploadMb => &mut o.php_upload_mb,
            LimitField::PhpExecutionS => &mut o.php_execution_s,
            LimitField::CronJobs => &mut o.cron_jobs,
        }
    }
}

impl std::fmt::Display for LimitField {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The limits an account works under: its plan's (or the default plan's), with each
/// overridden field replaced. This is the one definition the API and the mail
/// builder (outgoing rates) use.
pub fn effective_limits(plan: &Limits, overrides: &LimitOverrides) -> Limits {
    let mut out = *plan;
    for f in LimitField::ALL {
        if let Some(v) = f.get_override(overrides) {
            *f.get_mut(&mut out) = v;
        }
    }
    out
}

/// The limits of `account`: its plan's (`plan`, the [`crate::entity::Plan`] its
/// `plan` id names, if it still exists) or else `default` (the controller's
/// `[default_plan]`), with the account's overrides. What the mail builder calls for
/// a customer's outgoing rates.
pub fn account_limits(
    account: &crate::entity::Account,
    plan: Option<&crate::entity::Plan>,
    default: &Limits,
) -> Limits {
    effective_limits(plan.map_or(default, |p| &p.limits), &account.limits)
}

/// The first value of `limits` outside its range, if any.
pub fn out_of_range(limits: &Limits) -> Option<LimitField> {
    LimitField::ALL
        .into_iter()
        .find(|f| !f.range().contains(&f.get(limits)))
}

/// The first value of `limits` above the same value of `ceiling` (a reseller's
/// own limits bound the plans and overrides it gives its customers).
pub fn exceeds(limits: &Limits, ceiling: &Limits) -> Option<LimitField> {
    LimitField::ALL
        .into_iter()
        .find(|f| f.get(limits) > f.get(ceiling))
}

/// Whether a new quota is acceptable under `max`: in [`QUOTA_RANGE_MB`] and at most
/// `max`, or (lowering an existing quota that a lowered limit left above `max`) not
/// above the quota it replaces.
pub fn quota_allowed(new: u64, max: u64, current: Option<u64>) -> bool {
    QUOTA_RANGE_MB.contains(&new) && (new <= max || current.is_some_and(|c| c != 0 && new <= c))
}

/// A site's disk limit in MiB as its servers enforce it: the owner's
/// `site_disk_mb` (0: none). The one place the API's `quota_mb` and the web and
/// files servers' limits come from.
pub fn site_quota_mb(limits: &Limits) -> u64 {
    limits.site_disk_mb
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overrides_replace_only_their_field() {
        let plan = Limits::default();
        let o = LimitOverrides {
            max_domains: Some(3),
            mail_messages_per_hour: Some(0),
            ..Default::default()
        };
        let e = effective_limits(&plan, &o);
        assert_eq!(e.max_domains, 3);
        assert_eq!(e.mail_messages_per_hour, 0);
        assert_eq!(e.max_mailboxes, plan.max_mailboxes);
        assert_eq!(effective_limits(&plan, &LimitOverrides::default()), plan);
    }

    #[test]
    fn defaults_are_in_range_and_ranges_refuse_unlimited_sizes() {
        assert_eq!(out_of_range(&Limits::default()), None);
        let mut l = Limits {
            max_mailbox_quota_mb: 0,
            ..Limits::default()
        };
        assert_eq!(out_of_range(&l), Some(LimitField::MaxMailboxQuotaMb));
        l.max_mailbox_quota_mb = u64::MAX;
        assert_eq!(out_of_range(&l), Some(LimitField::MaxMailboxQuotaMb));
    }

    #[test]
    fn quotas_lower_but_never_raise_past_the_limit() {
        assert!(quota_allowed(1, 100, None));
        assert!(quota_allowed(100, 100, None));
        assert!(!quota_allowed(101, 100, None));
        assert!(!quota_allowed(0, 100, None));
        assert!(!quota_allowed(u64::MAX, u64::MAX, None));
        // A quota of 500 left above a lowered limit of 100 may go down to 300 ...
        assert!(quota_allowed(300, 100, Some(500)));
        // ... but not up.
        assert!(!quota_allowed(600, 100, Some(500)));
        // An old "unlimited" (0) is not a licence for any value.
        assert!(!quota_allowed(300, 100, Some(0)));
    }

    #[test]
    fn ceilings() {
        let ceiling = Limits::default();
        let mut l = ceiling;
        assert_eq!(exceeds(&l, &ceiling), None);
        l.max_databases += 1;
        assert_eq!(exceeds(&l, &ceiling), Some(LimitField::MaxDatabases));
    }
}
