//! REST bodies of plans, limits and customer endpoints (`/v1/plans`,
//! `/v1/endpoints`, the `limits` of a customer); re-exported from [`crate::v1`].

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// A complete set of limits (sizes in MiB). Ranges: quotas 1..=1048576 (1 TiB);
/// disks 0..=1048576; counts and messages per hour 0..=1000000; recipients per
/// message 1..=10000.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct LimitsView {
    /// Largest quota (MiB) of one mailbox.
    pub max_mailbox_quota_mb: u64,
    /// Largest quota (MiB) of one FTP account.
    pub max_ftp_quota_mb: u64,
    /// Most domains.
    pub max_domains: u64,
    /// Most mailboxes.
    pub max_mailboxes: u64,
    /// Most databases.
    pub max_databases: u64,
    /// Most FTP accounts.
    pub max_ftp_accounts: u64,
    /// Disk (MiB) for kept site deployment archives.
    pub deployment_disk_mb: u64,
    /// Disk (MiB) for site files.
    pub site_disk_mb: u64,
    /// Outgoing messages per hour (per mailbox and per domain).
    pub mail_messages_per_hour: u64,
    /// Recipients of one outgoing message.
    pub mail_recipients_per_message: u64,
    /// Largest PHP `memory_limit` (MiB) a site may set, 16..=16384.
    #[serde(default)]
    pub php_memory_mb: u64,
    /// Largest PHP `upload_max_filesize`/`post_max_size` (MiB), 1..=4096.
    #[serde(default)]
    pub php_upload_mb: u64,
    /// Largest PHP `max_execution_time`/`max_input_time` (seconds), 1..=86400.
    #[serde(default)]
    pub php_execution_s: u64,
    /// Most cron jobs of one site, 0..=1000.
    #[serde(default)]
    pub cron_jobs: u64,
}

impl From<model::limits::Limits> for LimitsView {
    fn from(l: model::limits::Limits) -> Self {
        Self {
            max_mailbox_quota_mb: l.max_mailbox_quota_mb,
            max_ftp_quota_mb: l.max_ftp_quota_mb,
            max_domains: l.max_domains,
            max_mailboxes: l.max_mailboxes,
            max_databases: l.max_databases,
            max_ftp_accounts: l.max_ftp_accounts,
            deployment_disk_mb: l.deployment_disk_mb,
            site_disk_mb: l.site_disk_mb,
            mail_messages_per_hour: l.mail_messages_per_hour,
            mail_recipients_per_message: l.mail_recipients_per_message,
            php_memory_mb: l.php_memory_mb,
            php_upload_mb: l.php_upload_mb,
            php_execution_s: l.php_execution_s,
            cron_jobs: l.cron_jobs,
        }
    }
}

/// Some limits: a plan change, or an account's overrides (in a customer update a
/// value of `null` removes that override).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LimitsPatch {
    /// See [`LimitsView::max_mailbox_quota_mb`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_mailbox_quota_mb: Option<u64>,
    /// See [`LimitsView::max_ftp_quota_mb`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_ftp_quota_mb: Option<u64>,
    /// See [`LimitsView::max_domains`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_domains: Option<u64>,
    /// See [`LimitsView::max_mailboxes`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_mailboxes: Option<u64>,
    /// See [`LimitsView::max_databases`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_databases: Option<u64>,
    /// See [`LimitsView::max_ftp_accounts`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_ftp_accounts: Option<u64>,
    /// See [`LimitsView::deployment_disk_mb`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deployment_disk_mb: Option<u64>,
    /// See [`LimitsView::site_disk_mb`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub site_disk_mb: Option<u64>,
    /// See [`LimitsView::mail_messages_per_hour`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mail_messages_per_hour: Option<u64>,
    /// See [`LimitsView::mail_recipients_per_message`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mail_recipients_per_message: Option<u64>,
    /// See [`LimitsView::php_memory_mb`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub php_memory_mb: Option<u64>,
    /// See [`LimitsView::php_upload_mb`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub php_upload_mb: Option<u64>,
    /// See [`LimitsView::php_execution_s`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub php_execution_s: Option<u64>,
    /// See [`LimitsView::cron_jobs`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cron_jobs: Option<u64>,
}

impl From<LimitsPatch> for model::limits::LimitOverrides {
    fn from(p: LimitsPatch) -> Self {
        Self {
            max_mailbox_quota_mb: p.max_mailbox_quota_mb,
            max_ftp_quota_mb: p.max_ftp_quota_mb,
            max_domains: p.max_domains,
            max_mailboxes: p.max_mailboxes,
            max_databases: p.max_databases,
            max_ftp_accounts: p.max_ftp_accounts,
            deployment_disk_mb: p.deployment_disk_mb,
            site_disk_mb: p.site_disk_mb,
            mail_messages_per_hour: p.mail_messages_per_hour,
            mail_recipients_per_message: p.mail_recipients_per_message,
            php_memory_mb: p.php_memory_mb,
            php_upload_mb: p.php_upload_mb,
            php_execution_s: p.php_execution_s,
            cron_jobs: p.cron_jobs,
        }
    }
}

impl From<model::limits::LimitOverrides> for LimitsPatch {
    fn from(p: model::limits::LimitOverrides) -> Self {
        Self {
            max_mailbox_quota_mb: p.max_mailbox_quota_mb,
            max_ftp_quota_mb: p.max_ftp_quota_mb,
            max_domains: p.max_domains,
            max_mailboxes: p.max_mailboxes,
            max_databases: p.max_databases,
            max_ftp_accounts: p.max_ftp_accounts,
            deployment_disk_mb: p.deployment_disk_mb,
            site_disk_mb: p.site_disk_mb,
            mail_messages_per_hour: p.mail_messages_per_hour,
            mail_recipients_per_message: p.mail_recipients_per_message,
            php_memory_mb: p.php_memory_mb,
            php_upload_mb: p.php_upload_mb,
            php_execution_s: p.php_execution_s,
            cron_jobs: p.cron_jobs,
        }
    }
}

/// `POST /v1/plans` (admins and resellers).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreatePlan {
    /// Name: lowercase letters, digits, hyphens.
    pub name: String,
    /// Free text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Limits; a missing one takes the controller's default plan value (for a
    /// reseller, at most its own limit).
    #[serde(default)]
    pub limits: LimitsPatch,
}

/// `PATCH /v1/plans/{name}`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdatePlan {
    /// New description.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Limits to change.
    #[serde(default)]
    pub limits: LimitsPatch,
}

/// A plan.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct PlanView {
    /// Name.
    pub name: String,
    /// The reseller that defined it; absent for an admin plan.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reseller: Option<String>,
    /// Free text.
    pub description: String,
    /// The limits.
    pub limits: LimitsView,
    /// Accounts on this plan.
    pub accounts: u64,
    /// RFC 3339.
    pub created_at: String,
}

/// The addresses a customer points DNS and clients at for one domain: only the
/// servers that serve it, by host name and address (never the inventory).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct EndpointsView {
    /// The domain.
    pub domain: String,
    /// Web servers' addresses (A/AAAA of the site).
    pub web: Vec<String>,
    /// Name servers (host names).
    pub dns: Vec<String>,
    /// Mail servers (host names): MX, and IMAP/POP3/SMTP submission.
    pub mail: Vec<String>,
    /// FTP servers (host names).
    pub ftp: Vec<String>,
    /// Database hosts (host names) of the customer's databases, per database name.
    pub databases: std::collections::BTreeMap<String, Vec<String>>,
}
