//! REST bodies of a site's files (issue 14): conflicts, restores, kept deployments
//! and rollback (`/v1/sites/{domain}/…`); re-exported from [`crate::v1`].

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// A losing version kept in the site's conflicts area on its files server.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct SiteConflictView {
    /// The record's id.
    pub id: String,
    /// The path the losing change was for.
    pub path: String,
    /// The server that made the losing change.
    pub origin: String,
    /// When the files server decided (RFC 3339).
    pub time: String,
    /// `file`, `dir` or `symlink`: what the losing version was.
    pub kind: String,
    /// Its size in bytes (files only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub size: Option<u64>,
}

/// `POST /v1/sites/{domain}/restore`: bring back a deleted or overwritten file or
/// folder from the files server's kept versions.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateSiteRestore {
    /// The path inside the site, e.g. `wp-content/uploads/logo.png`.
    pub path: String,
    /// Restore the version current at this time (RFC 3339); absent: the last
    /// version replaced or deleted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub at: Option<String>,
}

/// A restore request and where it stands.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct SiteRestoreView {
    /// The request's id.
    pub id: String,
    /// The site.
    pub domain: String,
    /// The path.
    pub path: String,
    /// The time asked for (RFC 3339), if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub at: Option<String>,
    /// When it was asked (RFC 3339).
    pub requested_at: String,
    /// `pending` (the files server has not answered yet), `ok` or `failed`.
    pub state: String,
    /// The files server's message once finished.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub message: String,
}

/// `POST /v1/sites/{domain}/rollback`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SiteRollback {
    /// The kept deployment to make current again; absent: the one before the
    /// current one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
}

/// One of a site's kept deployments (`GET /v1/sites/{domain}/deployments`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct KeptDeploymentView {
    /// Deployment id (BLAKE3 of the archive).
    pub id: String,
    /// Archive size, bytes.
    pub size: u64,
    /// When it was uploaded (RFC 3339).
    pub deployed_at: String,
    /// Whether it is the site's content now.
    pub current: bool,
}
