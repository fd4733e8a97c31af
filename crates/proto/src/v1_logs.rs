//! REST bodies of `GET /v1/sites/{domain}/logs`: a site's access, error, PHP and
//! cron logs from every web server of its cluster, merged in time order;
//! re-exported from [`crate::v1`].

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// The merged lines and which servers answered.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct SiteLogsView {
    /// Oldest first.
    pub lines: Vec<SiteLogLineView>,
    /// Every web server of the site's cluster that was asked.
    pub servers: Vec<SiteLogsServerView>,
    /// Some server had more matching lines than the limit, or the merge left the
    /// oldest out: ask again with `since` for more.
    pub truncated: bool,
}

/// One line.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct SiteLogLineView {
    /// The line's time stamp (RFC 3339, UTC).
    pub time: String,
    /// Milliseconds since the Unix epoch (for `since` when following).
    pub at_ms: i64,
    /// The web server that wrote it.
    pub server: String,
    /// `access`, `error`, `php` or `cron`.
    pub kind: String,
    /// The line as written.
    pub text: String,
}

/// Whether one server answered.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct SiteLogsServerView {
    /// Server name.
    pub server: String,
    /// It answered (its lines are in).
    pub answered: bool,
    /// Why not, when it did not (down, timed out, an error).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}
