//! A site's files (issue 14): conflicts, restores, kept deployments and rollback.

use crate::{Client, Result};

impl Client {
    /// `GET /v1/sites/{domain}/conflicts`: losing versions kept by the files server.
    pub async fn site_conflicts(&self, domain: &str) -> Result<Vec<proto::v1::SiteConflictView>> {
        self.get(&["v1", "sites", domain, "conflicts"]).await
    }

    /// `GET /v1/sites/{domain}/logs`: the newest lines of the site's logs from every
    /// web server of its cluster, merged in time order. `kind`: comma-separated
    /// `access,error,php,cron` (`None`: all); `since`: RFC 3339, a time ago (`15m`)
    /// or epoch milliseconds.
    pub async fn site_logs(
        &self,
        domain: &str,
        kind: Option<&str>,
        since: Option<&str>,
        limit: Option<u32>,
    ) -> Result<proto::v1::SiteLogsView> {
        let mut q: Vec<(&str, String)> = Vec::new();
        if let Some(k) = kind {
            q.push(("kind", k.to_owned()));
        }
        if let Some(s) = since {
            q.push(("since", s.to_owned()));
        }
        if let Some(l) = limit {
            q.push(("limit", l.to_string()));
        }
        self.get_with(&["v1", "sites", domain, "logs"], &q).await
    }

    /// `POST /v1/sites/{domain}/restore`: ask for a path back (answered at once;
    /// [`Client::site_restore`] follows it).
    pub async fn restore_site_path(
        &self,
        domain: &str,
        req: &proto::v1::CreateSiteRestore,
    ) -> Result<proto::v1::SiteRestoreView> {
        self.post(&["v1", "sites", domain, "restore"], req).await
    }

    /// `GET /v1/sites/{domain}/restore/{id}`: where a restore stands.
    pub async fn site_restore(&self, domain: &str, id: &str) -> Result<proto::v1::SiteRestoreView> {
        self.get(&["v1", "sites", domain, "restore", id]).await
    }

    /// `POST /v1/sites/{domain}/rollback`: make a kept deployment current again.
    pub async fn rollback_site(
        &self,
        domain: &str,
        req: &proto::v1::SiteRollback,
    ) -> Result<proto::v1::DeploymentView> {
        self.post(&["v1", "sites", domain, "rollback"], req).await
    }

    /// `GET /v1/sites/{domain}/deployments`: the kept deployments, current first.
    pub async fn site_deployments(
        &self,
        domain: &str,
    ) -> Result<Vec<proto::v1::KeptDeploymentView>> {
        self.get(&["v1", "sites", domain, "deployments"]).await
    }
}
