//! The REST calls tests make through a [`TestCluster`]: clusters, customers and
//! tokens, join tokens, servers, sites and events, and waiting for a condition.

use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};
use proto::v1::{
    ClusterView, CreateCluster, CreateCustomer, CreateToken, CustomerView, EventParams, EventView,
    JoinTokenCreated, ServerView, SiteView,
};
use serde_json::Value;

use crate::{TestCluster, POLL};

impl TestCluster {
    /// Create a cluster of `role`; `default` makes it its role's default cluster.
    pub async fn add_cluster(&self, name: &str, role: &str, default: bool) -> Result<ClusterView> {
        Ok(self
            .admin
            .create_cluster(&CreateCluster {
                name: name.to_owned(),
                role: role.to_owned(),
                description: None,
                default: Some(default),
                web_ttl: None,
                ttl: None,
                external_secondaries: None,
                hostname: None,
            })
            .await?)
    }

    /// Create a customer account (token login only).
    pub async fn add_customer(&self, name: &str) -> Result<CustomerView> {
        Ok(self
            .admin
            .create_customer(&CreateCustomer {
                name: name.to_owned(),
                kind: None,
                display_name: None,
                email: None,
                reseller: None,
                password: None,
                default_clusters: None,
                db_quota_mb: None,
            })
            .await?)
    }

    /// An API token acting as `account` (made by the admin).
    pub async fn api_token_for(&self, account: &str) -> Result<String> {
        Ok(self
            .admin
            .create_token(&CreateToken {
                name: format!("test-{account}"),
                account: Some(account.to_owned()),
                expires_in_days: None,
            })
            .await?
            .token)
    }

    /// An admin request with a JSON body (for endpoints the typed client lacks);
    /// returns the status and the JSON body (`null` when empty).
    pub async fn admin_post(&self, path: &str, body: &Value) -> Result<(u16, Value)> {
        let resp = self
            .raw
            .post(format!("{}{path}", self.url))
            .bearer_auth(&self.admin_token)
            .json(body)
            .send()
            .await?;
        let status = resp.status().as_u16();
        let bytes = resp.bytes().await?;
        let value = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes).unwrap_or(Value::Null)
        };
        Ok((status, value))
    }

    /// Create a one-time join token for `cluster` (`POST /v1/join-tokens`).
    pub async fn join_token(&self, cluster: &str) -> Result<JoinTokenCreated> {
        let (status, body) = self
            .admin_post(
                "/v1/join-tokens",
                &serde_json::json!({ "cluster": cluster }),
            )
            .await?;
        if status != 201 {
            bail!("creating a join token for {cluster}: HTTP {status}: {body}");
        }
        Ok(serde_json::from_value(body)?)
    }

    /// Age a join token past its expiry, in the store beside the running
    /// controller (expiry is at least a minute away otherwise).
    pub async fn expire_join_token(&self, token: &str) -> Result<()> {
        let public_id = token
            .strip_prefix("hpj_")
            .and_then(|t| t.split('_').next())
            .ok_or_else(|| anyhow!("`{token}` is not a join token"))?;
        let config = controller::config::ControllerConfig::load(&self.config_path)?;
        let store = store::Store::open_url(&config.store_url()).await?;
        let result = async {
            let mut tx = store
                .begin(store::Actor {
                    account: None,
                    label: "test".into(),
                })
                .await?;
            let mut t = tx
                .get_by_name::<model::entity::JoinToken>(public_id)
                .await?
                .ok_or_else(|| anyhow!("no join token {public_id}"))?;
            t.data.expires_at -= 24 * 3600;
            tx.update(t.meta.id, &t.meta.name, t.data).await?;
            tx.commit().await?;
            anyhow::Ok(())
        }
        .await;
        store.close().await;
        result
    }

    /// `GET /v1/servers/{name}`.
    pub async fn server(&self, name: &str) -> Result<ServerView> {
        Ok(self.admin.get_server(name).await?)
    }

    /// `GET /v1/sites/{domain}`.
    pub async fn site(&self, domain: &str) -> Result<SiteView> {
        Ok(self.admin.get_site(domain).await?)
    }

    /// Every event with `action` (oldest first).
    pub async fn events(&self, action: &str) -> Result<Vec<EventView>> {
        Ok(self
            .admin
            .list_all_events(&EventParams::default())
            .await?
            .into_iter()
            .filter(|e| e.action == action)
            .collect())
    }

    /// Poll `check` every 50 ms until it returns `Ok(true)`; fail after
    /// `timeout` with `what` and the last error. Errors (e.g. a controller that is
    /// restarting) count as "not yet".
    pub async fn wait_until<F>(&self, what: &str, timeout: Duration, check: F) -> Result<()>
    where
        F: AsyncFn(&TestCluster) -> Result<bool>,
    {
        let deadline = Instant::now() + timeout;
        let mut last_error = None;
        loop {
            match check(self).await {
                Ok(true) => return Ok(()),
                Ok(false) => {}
                Err(e) => last_error = Some(e),
            }
            if Instant::now() > deadline {
                return Err(match last_error {
                    Some(e) => {
                        anyhow!("timed out after {timeout:?} waiting for {what}; last error: {e:#}")
                    }
                    None => anyhow!("timed out after {timeout:?} waiting for {what}"),
                });
            }
            tokio::time::sleep(POLL).await;
        }
    }

    /// Wait until server `name` is `health` (`up`, `suspect`, `down`).
    pub async fn wait_health(
        &self,
        name: &str,
        health: &str,
        timeout: Duration,
    ) -> Result<ServerView> {
        self.wait_until(&format!("{name} {health}"), timeout, async |c| {
            Ok(c.server(name).await?.health == health)
        })
        .await
        .with_context(|| format!("{name}: {:?}", self.logs_hint(name)))?;
        self.server(name).await
    }

    /// Wait until server `name` is up and has applied the config revision the
    /// controller holds for it; returns that view.
    pub async fn wait_converged(&self, name: &str, timeout: Duration) -> Result<ServerView> {
        self.wait_until(&format!("{name} up and converged"), timeout, async |c| {
            let s = c.server(name).await?;
            Ok(s.health == "up"
                && s.config_revision.is_some()
                && s.applied_revision == s.config_revision)
        })
        .await
        .with_context(|| format!("{name}: {:?}", self.logs_hint(name)))?;
        self.server(name).await
    }
}
