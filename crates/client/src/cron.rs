//! A site's cron jobs (issue 15).

use crate::{Client, Result};

impl Client {
    /// `GET /v1/sites/{domain}/cron`.
    pub async fn list_cron_jobs(&self, domain: &str) -> Result<Vec<proto::v1::CronJobView>> {
        self.get(&["v1", "sites", domain, "cron"]).await
    }

    /// `POST /v1/sites/{domain}/cron`.
    pub async fn create_cron_job(
        &self,
        domain: &str,
        req: &proto::v1::CreateCronJob,
    ) -> Result<proto::v1::CronJobView> {
        self.post(&["v1", "sites", domain, "cron"], req).await
    }

    /// `DELETE /v1/sites/{domain}/cron/{id}`.
    pub async fn delete_cron_job(&self, domain: &str, id: u32) -> Result<()> {
        self.delete(&["v1", "sites", domain, "cron", &id.to_string()])
            .await
    }
}
