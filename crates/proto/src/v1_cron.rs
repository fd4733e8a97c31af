//! REST bodies of a site's cron jobs (issue 15, `/v1/sites/{domain}/cron`);
//! re-exported from [`crate::v1`].

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// `POST /v1/sites/{domain}/cron`: a new job (rules: `model::cron`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateCronJob {
    /// 5 fields (`*/5 * * * *`, UTC) or a macro (`@hourly`).
    pub schedule: String,
    /// `php SCRIPT [ARGS]` (no shell; SCRIPT inside the site) or `GET /path`.
    pub command: String,
}

/// One cron job as shown.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct CronJobView {
    /// Its id within the site (for `cron delete`).
    pub id: u32,
    /// The schedule, normalised.
    pub schedule: String,
    /// The command, normalised.
    pub command: String,
    /// The next minute it fires (RFC 3339, UTC).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_run: Option<String>,
    /// The web server that runs the site's jobs (absent: none usable now).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server: Option<String>,
}
